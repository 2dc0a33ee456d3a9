"""Cost of deterministic mode per training step, measured with the two modes interleaved step by step in one
process, so load from other jobs on a shared machine hits both alike (bench/determinism.py times whole
stages, one mode after the other, which a loaded machine skews).

    .venv/bin/python bench/determinism_steps.py [--steps 30] [--size tiny] [--points 60000] [--threads 2]

The step is `finetune`'s (training/finetuning/segmentation.py): a Res16UNet on a synthetic room's scan with its
augmentation, cross-entropy, SGD. Normal mode: `--threads` torch/OpenMP/BLAS threads (the stage's
cpus_per_worker); deterministic mode: one thread and torch's deterministic algorithms
(training/runtime/determinism.configure). Prints the median seconds per step of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from pix2point.io.scannet import aligned, read_axis_alignment, read_scan
from pix2point.models.backbone import BackboneSpec, build_backbone
from pix2point.synthetic.scene import SyntheticSceneConfig, write_synthetic_scene
from pix2point.training.augment import PointAugmentation
from pix2point.training.finetuning.segmentation import SegmentationModel, scene_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="steps per mode, interleaved")
    parser.add_argument("--size", default="tiny", help="Res16UNet size (backbone_spec.UNET_SIZES)")
    parser.add_argument("--points", type=int, default=60_000, help="points of the scan (the default profile's)")
    parser.add_argument("--threads", type=int, default=2, help="threads in normal mode (cpus_per_worker)")
    args = parser.parse_args()
    points = room_scan(args.points)
    spec = BackboneSpec(args.size, "rgb", 0.05)
    models = {mode: SegmentationModel(build_backbone(spec), 20) for mode in ("normal", "deterministic")}
    optimisers = {mode: torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) for mode, model in models.items()}
    seconds: dict[str, list[float]] = {mode: [] for mode in models}
    rng = np.random.default_rng(0)
    for step in range(args.steps + 2):  # the first two pairs warm up allocators and kernel-map caches
        for mode in (("normal", "deterministic") if step % 2 == 0 else ("deterministic", "normal")):
            elapsed = timed_step(models[mode], optimisers[mode], points, spec, rng, mode, args.threads)
            if step >= 2:
                seconds[mode].append(elapsed)
    normal, deterministic = (statistics.median(seconds[mode]) for mode in ("normal", "deterministic"))
    print(f"finetune step, Res16UNet {args.size}, {args.points} points, {args.steps} steps per mode, interleaved")
    print(f"  normal ({args.threads} threads): {normal:.3f} s/step   deterministic (1 thread): {deterministic:.3f} s/step")
    print(f"determinism: step_ratio={deterministic / normal:.2f}")


def room_scan(points: int):
    """A synthetic room's scan in its aligned frame, as the scenes stage stores it."""
    with tempfile.TemporaryDirectory() as tmp:
        config = SyntheticSceneConfig(frames=1, color_size=(32, 24), depth_size=(32, 24), points=points)
        scene_dir = write_synthetic_scene(Path(tmp), "scene0000_00", seed=0, config=config)
        scan, _ = aligned(read_scan(scene_dir), [], read_axis_alignment(scene_dir))
    return scan


def timed_step(model, optimiser, points, spec, rng, mode: str, threads: int) -> float:
    deterministic = mode == "deterministic"
    count = 1 if deterministic else threads
    with threadpool_limits(limits=count):
        torch.set_num_threads(count)
        torch.use_deterministic_algorithms(deterministic)
        started = time.perf_counter()
        batch, sample, point, label = scene_batch([points], spec, rng, PointAugmentation())
        loss = torch.nn.functional.cross_entropy(model(batch, sample, point), label)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        return time.perf_counter() - started


if __name__ == "__main__":
    main()
