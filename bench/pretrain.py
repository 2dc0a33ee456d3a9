"""Benchmark of PPKT pretraining: steps/s and points/s under Ray Train (1 and 2 workers) against the very same
training step run plainly in this process, plus peak memory.

    .venv/bin/python bench/pretrain.py [--steps 20] [--profile PROFILE] [--artefacts DIR]

The spine (scenes, features2d, pairs) comes from the pipeline's artefact cache (built if missing). Rates are
taken inside the training loop from the per-step timestamps of loss.parquet, after one warm-up step, so
worker start-up is reported separately from the steady state.
"""

from __future__ import annotations

import os

# Ray gives each worker OMP_NUM_THREADS = its CPUs; the plain baseline gets the same before numpy/torch load,
# or OpenBLAS/OpenMP would spread over every core and the comparison would measure oversubscription.
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 2))

import argparse  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402

from stages import pretrain  # noqa: E402
from pix2point.engine.artefacts import ArtefactStore  # noqa: E402
from pix2point.engine.cluster import start_local_ray  # noqa: E402
from pix2point.engine.pipeline import load_pipeline  # noqa: E402
from pix2point.engine.runner import run_pipeline  # noqa: E402
from pix2point.training.runtime.determinism import configure  # noqa: E402
from pix2point.training.pretraining.ppkt import build_training  # noqa: E402
from pix2point.training.runtime.sample_stream import DirectSamples  # noqa: E402

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--profile", default=None, help="pipeline profile (default: the default profile)")
    parser.add_argument("--artefacts", type=Path, default=Path("artefacts"))
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cpus = os.cpu_count() or 2
    start_local_ray(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    pipeline = load_pipeline(PIPELINE, args.profile)
    spine = {o.stage: o.path for o in run_pipeline(pipeline, ArtefactStore(args.artefacts), targets=["pairs"])}
    params = pipeline.stages["pretrain"].params.model_copy(update={"steps": args.steps, "checkpoint_every": args.steps})
    # Deterministic (the default): one thread a worker, in the plain loop too; otherwise every CPU.
    threads = 1 if params.deterministic else cpus
    rows = [plain_loop(params, spine, threads)]
    for workers in (1, 2):
        per_worker = 1 if params.deterministic else cpus // workers
        rows.append(ray_train(params.model_copy(update={"num_workers": workers, "cpus_per_worker": per_worker}), spine))
    print_table(rows, params)
    ray.shutdown()


def plain_loop(params: pretrain.PPKTParams, spine: dict[str, Path], cpus: int) -> dict:
    configure(params.deterministic)  # what a Ray Train worker does first (distributed._configured_loop)
    torch.set_num_threads(cpus)
    with tempfile.TemporaryDirectory() as out:
        config = pretrain.ppkt_config(params, spine, Path(out))
        training = build_training(config, rank=0, device=torch.device("cpu"),
                                  samples=DirectSamples(config.stream_spec(), rank=0))
        training.step(training.streams(0))  # warm-up: first-touch allocations and scene loading
        points, started = 0, time.perf_counter()
        for step in range(1, params.steps):
            points += training.step(training.streams(step))[1]["points"]
        seconds = time.perf_counter() - started
    return {"run": f"plain loop, 1 process, {cpus} thread(s)", "workers": 1, "steps_per_s": (params.steps - 1) / seconds,
            "points_per_s": points / seconds, "startup_s": float("nan"),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def ray_train(params: pretrain.PPKTParams, spine: dict[str, Path]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out, scratch = Path(tmp) / "out", Path(tmp) / "scratch"
        out.mkdir()
        started = time.perf_counter()
        pretrain.run(params, spine, out, scratch=scratch)
        total = time.perf_counter() - started
        history = pq.read_table(out / "loss.parquet").to_pydict()
    seconds = np.array(history["seconds"])
    steady = seconds[-1] - seconds[0]
    points = params.num_workers * np.sum(history["points"][1:])  # rank 0's batches; workers draw equal sizes
    return {"run": f"Ray Train, {params.num_workers} worker(s) x {params.cpus_per_worker} CPU", "workers": params.num_workers,
            "steps_per_s": (len(seconds) - 1) / steady, "points_per_s": points / steady,
            "startup_s": total - seconds[-1], "peak_rss_mb": max(history["worker_peak_rss_mb"])}


def print_table(rows: list[dict], params: pretrain.PPKTParams) -> None:
    print(f"\nPPKT pretraining, backbone {params.backbone}, voxel {params.voxel_size} m, "
          f"{params.frames_per_batch} frames x {params.num_pairs} pairs per step, split among the workers, {params.steps} steps")
    print(f"{'run':45} {'steps/s':>8} {'points/s':>10} {'vs plain':>9} {'startup s':>10} {'peak RSS MB':>12}")
    baseline = rows[0]["steps_per_s"]
    for row in rows:
        print(f"{row['run']:45} {row['steps_per_s']:8.3f} {row['points_per_s']:10.0f} {row['steps_per_s'] / baseline:9.2f} "
              f"{row['startup_s']:10.1f} {row['peak_rss_mb']:12.0f}")
    print("(2 workers: each step is 2 batches, one per worker, so compare points/s for throughput)")


if __name__ == "__main__":
    main()
