"""How close the features2d stage comes to the bare teacher forward pass on the same frames.

    .venv/bin/python bench/features2d.py [--num-scenes N] [--frames N] [--scenes-dir ARTEFACT]

Generates the default profile's synthetic scenes (or uses an existing scenes artefact), then times in one
process (a) the stage's run() end to end, and inside its Ray task from the teacher being ready to the last
shard written, and (b) the bare teacher forward pass over the same frames, already decoded, resized and
normalised in memory, at the same batch size and thread count. The stage runs twice: the first run includes
starting a Ray worker and importing torch in it, the second finds the worker warm. Prints a table; asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

import stages.features2d as features2d
import stages.scenes as scenes
from pix2point.engine.cluster import start_local_ray
from pix2point.io.images import normalise_images, read_resized_images
from pix2point.io.scenes_table import read_frames
from pix2point.models.teachers import build_teacher


def main() -> None:
    args = parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    start_local_ray(include_dashboard=False, log_to_driver=False)
    params = features2d.Params()
    with tempfile.TemporaryDirectory() as tmp:
        scenes_dir = args.scenes_dir or generate_scenes(Path(tmp) / "scenes", args)
        cold = time_stage(params, scenes_dir, Path(tmp) / "features2d_cold")
        warm = time_stage(params, scenes_dir, Path(tmp) / "features2d_warm")
        bare_seconds = time_bare_forward(params, scenes_dir, threads=warm[0]["cpus_per_worker"])
    print_table(params, cold, warm, bare_seconds)


def parse_args() -> argparse.Namespace:
    defaults = scenes.SyntheticParams()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-scenes", type=int, default=defaults.num_scenes)
    parser.add_argument("--frames", type=int, default=defaults.frames, help="frames per synthetic scene")
    parser.add_argument("--scenes-dir", type=Path, help="an existing scenes artefact instead of synthetic scenes")
    return parser.parse_args()


def generate_scenes(out: Path, args: argparse.Namespace) -> Path:
    out.mkdir(parents=True)
    synthetic = scenes.SyntheticParams(num_scenes=args.num_scenes, frames=args.frames)
    scenes.run(scenes.Params(synthetic=synthetic), {}, out)
    return out


def time_stage(params: features2d.Params, scenes_dir: Path, out: Path) -> tuple[dict, float]:
    """The stage's metrics and the seconds its run() took."""
    out.mkdir()
    started = time.perf_counter()
    metrics = features2d.run(params, {"scenes": scenes_dir}, out)
    return metrics, time.perf_counter() - started


def time_bare_forward(params: features2d.Params, scenes_dir: Path, threads: int) -> float:
    """Seconds of the teacher alone over the stage's batches, with every input prepared beforehand."""
    torch.set_num_threads(threads)
    teacher = build_teacher(params.teacher, params.layer, params.teacher_weights)
    batches = features2d.plan_batches(read_frames(scenes_dir), params.frame_step, params.batch_size)
    inputs = [
        normalise_images(torch.from_numpy(read_resized_images(batch.color_paths, params.image_size)),
                         teacher.mean, teacher.std)
        for batch in batches
    ]
    with torch.inference_mode():
        teacher(inputs[0])  # warm-up: first-call allocations are not the forward rate
        started = time.perf_counter()
        for images in inputs:
            teacher(images)
        return time.perf_counter() - started


def print_table(params: features2d.Params, cold: tuple[dict, float], warm: tuple[dict, float],
                bare_seconds: float) -> None:
    metrics = warm[0]
    frames = metrics["frames"]
    bare_rate = frames / bare_seconds
    rows = [
        ("stage run(), end to end, cold worker", cold[1]),
        ("stage run(), end to end, warm worker", warm[1]),
        ("stage task, teacher ready to last shard", metrics["worker_seconds"]),
        ("bare teacher forward, inputs in memory", bare_seconds),
    ]
    print(f"\nfeatures2d: {params.teacher} {metrics['feature_shape']} at {params.image_size[0]}x{params.image_size[1]}, "
          f"batch {params.batch_size}, {frames} frames of {metrics['scenes']} scenes, "
          f"{metrics['workers']} worker(s) x {metrics['cpus_per_worker']} CPU(s)")
    print(f"{'':42} {'seconds':>8} {'frames/s':>9} {'vs bare':>8}")
    for label, seconds in rows:
        rate = frames / seconds
        print(f"{label:42} {seconds:8.2f} {rate:9.1f} {rate / bare_rate:8.2f}")
    driver_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: stage task {max(cold[0]['worker_max_rss_mb'], metrics['worker_max_rss_mb']):.0f} MiB, this process {driver_rss:.0f} MiB "
          "(ru_maxrss)")
    # Other work on the machine skews both timings differently; the load average tells when to distrust them.
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
