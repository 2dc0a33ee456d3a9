"""Benchmark of I2P-MAE pretraining under Ray Train: steps/s, objects/s and worker peak memory of plain masked
autoencoding, 2D-guided masking alone, and full I2P-MAE (guided masking + 2D target) on 1 worker, and full
I2P-MAE on 2 workers; every rate is also given as a ratio to plain masked autoencoding measured in this run.

    .venv/bin/python bench/pretrain_mae.py [--steps 12] [--profile smoke] [--artefacts DIR]

`--profile ''` takes the default profile's model. The objects and views2d artefacts come from the pipeline's
cache (built if missing). Rates are taken inside the training loop from the per-step timestamps of
loss.parquet, after one warm-up step, so worker start-up is reported apart from the steady state.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import ray

from stages import pretrain
from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.cluster import start_local_ray
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import run_pipeline

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline.yaml"
STAGE = "pretrain_i2p_mae"
RUNS = (  # (label, masking, target_2d, workers)
    ("plain MAE (random masking, no 2D target)", "random", False, 1),
    ("guided masking, no 2D target", "guided", False, 1),
    ("full I2P-MAE (guided + 2D target)", "guided", True, 1),
    ("full I2P-MAE, 2 workers", "guided", True, 2),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--profile", default="smoke", help="pipeline profile; '' for the default profile")
    parser.add_argument("--artefacts", type=Path, default=Path("artefacts"))
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    start_local_ray(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    pipeline = load_pipeline(PIPELINE, args.profile or None)
    inputs = {o.stage: o.path for o in run_pipeline(pipeline, ArtefactStore(args.artefacts), targets=["views2d"])}
    base = pipeline.stages[STAGE].params.model_copy(update={"steps": args.steps, "checkpoint_every": args.steps})
    rows = [measure(label, base.model_copy(update={"masking": masking, "target_2d": target_2d, "num_workers": workers}),
                    inputs) for label, masking, target_2d, workers in RUNS]
    print_table(rows, base, args.profile or "default")
    ray.shutdown()


def measure(label: str, params: pretrain.I2PMAEParams, inputs: dict[str, Path]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        started = time.perf_counter()
        pretrain.run(params, inputs, out, scratch=Path(tmp) / "scratch")
        total = time.perf_counter() - started
        history = pq.read_table(out / "loss.parquet").to_pydict()
    seconds = np.array(history["seconds"])
    steady = seconds[-1] - seconds[0]
    steps_per_s = (len(seconds) - 1) / steady
    return {"run": label, "workers": params.num_workers, "steps_per_s": steps_per_s,
            "objects_per_s": steps_per_s * params.num_workers * history["objects"][-1],
            "startup_s": total - seconds[-1], "peak_rss_mb": max(history["worker_peak_rss_mb"])}


def print_table(rows: list[dict], params: pretrain.I2PMAEParams, profile: str) -> None:
    print(f"\nI2P-MAE pretraining ({profile} profile): groups {list(params.num_groups)}, dims {list(params.encoder_dims)}, "
          f"depths {list(params.encoder_depths)}, batch {params.batch_size} per worker, {params.steps} steps, "
          f"{params.cpus_per_worker} CPU per worker")
    print(f"{'run':45} {'steps/s':>8} {'objects/s':>10} {'vs plain':>9} {'startup s':>10} {'peak RSS MB':>12}")
    baseline = rows[0]["objects_per_s"]
    for row in rows:
        print(f"{row['run']:45} {row['steps_per_s']:8.3f} {row['objects_per_s']:10.1f} "
              f"{row['objects_per_s'] / baseline:9.2f} {row['startup_s']:10.1f} {row['peak_rss_mb']:12.0f}")
    print("('vs plain' compares objects/s; with 2 workers each step is one batch per worker)")


if __name__ == "__main__":
    main()
