"""Benchmark of Image2Point classification training: steps/s of the inflated twin under each FIP mode, and
of the scratch twin, as ratios against inflated FIP `all` measured in the same run.

    .venv/bin/python bench/classify.py [--steps 12] [--rounds 3] [--profile PROFILE] [--artefacts DIR]

The objects come from the pipeline's artefact cache (built if missing); batch size and voxel size are the
classify stage's params of that profile. The step is the stage's own (training/finetuning/classification.train_step),
run plainly in this process. Modes take turns in `rounds` rounds, so a burst of load on a shared machine
hits them alike; each figure is the median over rounds.
"""

from __future__ import annotations

import os

# One thread count for every mode, fixed before numpy/torch load, so the ratios compare work, not threading.
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 2))

import argparse  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402

from stages import classify  # noqa: E402
from pix2point.engine.artefacts import ArtefactStore  # noqa: E402
from pix2point.engine.cluster import start_local_ray  # noqa: E402
from pix2point.engine.pipeline import load_pipeline  # noqa: E402
from pix2point.engine.runner import run_pipeline  # noqa: E402
from pix2point.io.objects_table import read_objects  # noqa: E402
from pix2point.models.fip import apply_fip, trainable_parameters  # noqa: E402
from pix2point.models.object_classifier import build_classifier  # noqa: E402
from pix2point.training.finetuning.classification import ClassifyConfig, train_step  # noqa: E402

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline.yaml"
VARIANTS = (("inflated", "all"), ("inflated", "iobn"), ("inflated", "io"), ("scratch", "all"), ("scratch", "io"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default=None, help="pipeline profile (default: the default profile)")
    parser.add_argument("--artefacts", type=Path, default=Path("artefacts"))
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    start_local_ray(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    pipeline = load_pipeline(PIPELINE, args.profile)
    (objects,) = run_pipeline(pipeline, ArtefactStore(args.artefacts), targets=["objects"])
    ray.shutdown()
    params: classify.Params = pipeline.stages["classify"].params
    with tempfile.TemporaryDirectory() as out:
        config = classify.classify_config(params, objects.path, Path(out))
        seconds = {variant: [] for variant in VARIANTS}
        trainable = {}
        for _ in range(args.rounds):
            for variant in VARIANTS:
                seconds[variant].append(time_steps(config, variant, args.steps, trainable))
    print_table(params, args, seconds, trainable)


def time_steps(config: ClassifyConfig, variant: tuple[str, str], steps: int, trainable: dict) -> float:
    """Seconds per training step of `variant`, after one warm-up step."""
    init, fip = variant
    torch.manual_seed(0)
    model, _ = build_classifier(config.classifier, init)
    trainable[variant] = apply_fip(model, model.trunk, fip).trainable
    model.train()
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=config.learning_rate, momentum=config.momentum)
    train = read_objects(config.objects_dir, "train")
    rng = np.random.default_rng(0)
    # The streamed form train_step takes: {"points", "label"} arrays per object.
    batches = [[{"points": train.points[i], "label": train.labels[i]}
                for i in rng.choice(len(train.labels), config.batch_size, replace=False)] for _ in range(steps + 1)]
    train_step(model, optimizer, batches[0], config, rng)
    started = time.perf_counter()
    for batch in batches[1:]:
        train_step(model, optimizer, batch, config, rng)
    return (time.perf_counter() - started) / steps


def print_table(params: classify.Params, args: argparse.Namespace, seconds: dict, trainable: dict) -> None:
    print(f"\nImage2Point classification training, {params.network} twin, batch {params.batch_size}, "
          f"voxel {params.voxel_size}, {os.environ['OMP_NUM_THREADS']} threads; {args.steps} steps x {args.rounds} "
          "rounds per variant, median over rounds")
    print(f"{'variant':18} {'trainable params':>17} {'steps/s':>8} {'vs inflated/all':>16}")
    baseline = 1 / np.median(seconds[("inflated", "all")])
    for variant in VARIANTS:
        rate = 1 / np.median(seconds[variant])
        print(f"{'/'.join(variant):18} {trainable[variant]:17,} {rate:8.3f} {rate / baseline:16.2f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
