"""Benchmark of FIP io's schedule (issue 22 item 4): test accuracy of inflated + io and of its control, scratch +
io (a random frozen trunk), after a given number of steps at each of a few peak learning rates, beside scratch +
all at the classify stage's own rate.

    .venv/bin/python bench/fip_io.py [--steps 100] [--learning-rates 0.1 0.03 0.01] [--seed 0] [--profile P]

The objects come from the pipeline's artefact cache (built if missing); batch size, voxel size, augmentation,
momentum and weight decay are the classify stage's params of that profile, and the step, the cosine schedule
and the scoring are the stage's own (training/finetuning/classification.py), run plainly in this process on all training
objects (the `all` shots setting) with one seed. It says which io learning rate to give `io_learning_rate`;
it is not a seed-resolved result (classify's report is).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import ray
import torch

from stages import classify
from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.cluster import start_local_ray
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import run_pipeline
from pix2point.io.objects_table import read_objects
from pix2point.models.fip import apply_fip, trainable_parameters
from pix2point.models.object_classifier import build_classifier
from pix2point.training.finetuning.classification import ClassifyConfig, evaluate_confusion, train_step

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="optimiser steps per run (the benchmark profile's classify: 100; the default's: 60)")
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[0.1, 0.03, 0.01])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default=None, help="pipeline profile (default: the default profile)")
    parser.add_argument("--artefacts", type=Path, default=Path("artefacts"))
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    start_local_ray(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    pipeline = load_pipeline(PIPELINE, args.profile)
    (objects,) = run_pipeline(pipeline, ArtefactStore(args.artefacts), targets=["objects"])
    ray.shutdown()
    params: classify.Params = pipeline.stages["classify"].params
    runs = [("scratch", "all", params.learning_rate)]
    runs += [(init, "io", rate) for rate in args.learning_rates for init in ("inflated", "scratch")]
    print(f"\nFIP io schedule: {params.network} twin, batch {params.batch_size}, voxel {params.voxel_size}, "
          f"{args.steps} steps (cosine to 0), all training objects, seed {args.seed}")
    print(f"{'variant':16} {'peak lr':>8} {'final train loss':>17} {'test accuracy %':>16} {'s/step':>7}")
    with tempfile.TemporaryDirectory() as out:
        config = classify.classify_config(params, objects.path, Path(out))
        for init, fip, rate in runs:
            loss, accuracy, seconds = train_and_score(replace(config, learning_rate=rate), init, fip, args.steps,
                                                      args.seed)
            print(f"{init + '/' + fip:16} {rate:8g} {loss:17.3f} {100 * accuracy:16.1f} {seconds:7.2f}", flush=True)


def train_and_score(config: ClassifyConfig, init: str, fip: str, steps: int, seed: int) -> tuple[float, float, float]:
    """(mean training loss of the last 10 % of steps, test accuracy after the last, seconds per step)."""
    torch.manual_seed(seed)
    model, _ = build_classifier(config.classifier, init)
    apply_fip(model, model.trunk, fip)
    model.train()
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=config.learning_rate, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    train = read_objects(config.objects_dir, "train")
    rng = np.random.default_rng(seed)
    losses, started = [], time.perf_counter()
    for _ in range(steps):
        batch = rng.choice(len(train.labels), config.batch_size, replace=False)
        samples = [{"points": train.points[index], "label": train.labels[index]} for index in batch]
        losses.append(train_step(model, optimizer, samples, config, rng))
        schedule.step()
    seconds = (time.perf_counter() - started) / steps
    confusion = evaluate_confusion(model, config)
    return float(np.mean(losses[-max(1, steps // 10):])), float(np.trace(confusion) / confusion.sum()), seconds


if __name__ == "__main__":
    main()
