"""Benchmark of the `pairs` stage: frames/s, pairs/s and peak memory, plus where one frame's time goes.

    .venv/bin/python bench/pairs.py                      # on the default profile's synthetic scenes
    .venv/bin/python bench/pairs.py --scenes ARTEFACT    # on an existing scenes artefact (e.g. ScanNet)

Every frame of the scenes artefact counts as kept (a features2d-like directory listing them all), so
the figures do not depend on the teacher stage. The stage runs twice on a local Ray: the first run
includes starting the workers and importing the stage in them, the second is the steady state.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import ray

import stages.pairs
import stages.scenes
from pix2point.engine.cluster import start_local_ray
from pix2point.geometry.visibility import frame_correspondences
from pix2point.io.arrow import tensor_column, write_table
from pix2point.io.features_table import shard_path
from pix2point.io.pairs_table import read_scene_pairs
from pix2point.io.scenes_table import read_frames, read_points, scene_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, help="an existing scenes artefact (default: generate the default profile's)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    start_local_ray(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="bench_pairs_") as tmp:
        scenes_dir = args.scenes or generate_scenes(Path(tmp) / "scenes")
        features_dir = keep_every_frame(scenes_dir, Path(tmp) / "features2d")
        inputs = {"scenes": scenes_dir, "features2d": features_dir}
        for label in ("cold", "warm"):
            out = Path(tmp) / f"pairs_{label}"
            out.mkdir()
            print_metrics(label, stages.pairs.run(stages.pairs.Params(), inputs, out))
        first_scene = scene_names(scenes_dir)[0]
        print_frame_breakdown(scenes_dir, first_scene)
        print_color_agreement(scenes_dir, Path(tmp) / "pairs_warm", first_scene)
    print(f"driver peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    ray.shutdown()


def generate_scenes(out: Path) -> Path:
    out.mkdir(parents=True)
    started = time.perf_counter()
    stages.scenes.run(stages.scenes.Params(), {}, out)
    print(f"generated the default profile's scenes in {time.perf_counter() - started:.1f} s")
    return out


def keep_every_frame(scenes_dir: Path, features_dir: Path) -> Path:
    """A features2d-like directory whose shards list every frame (kept_frames reads only the frame ids)."""
    frames = read_frames(scenes_dir)
    for scene in sorted({frame.scene for frame in frames}):
        ids = [frame.frame for frame in frames if frame.scene == scene]
        table = pa.table({"scene": [scene] * len(ids), "frame": pa.array(ids, pa.int32()),
                          "features": tensor_column(np.zeros((len(ids), 1, 1, 1), np.float16))})
        write_table(table, shard_path(features_dir, scene))
    return features_dir


def print_metrics(label: str, metrics: dict) -> None:
    print(f"{label}: {metrics['scenes']} scenes, {metrics['frames']} frames, {metrics['pairs']} pairs "
          f"({metrics['pairs_per_frame_mean']:.0f} per frame, {metrics['unseen_point_share']:.1%} of points never seen) "
          f"in {metrics['seconds']:.2f} s: {metrics['frames_per_s']:.1f} frames/s, {metrics['pairs_per_s']:.0f} pairs/s, "
          f"Ray task peak RSS {metrics['task_peak_rss_mb']:.0f} MB")


def print_frame_breakdown(scenes_dir: Path, scene: str) -> None:
    """The mean time one frame spends decoding depth vs in the geometry, measured in a one-CPU Ray task
    like the stage's (in this process a multi-threaded BLAS would skew the small matrix products)."""
    decode_s, geometry_s, points, depth_size = ray.get(ray.remote(num_cpus=1)(time_frames).remote(scenes_dir, scene))
    print(f"one frame of {scene} ({points} points, {depth_size[0]}x{depth_size[1]} depth): "
          f"decode {np.mean(decode_s) * 1e3:.2f} ms, geometry {np.mean(geometry_s) * 1e3:.2f} ms (mean of {len(decode_s)})")


def time_frames(scenes_dir: Path, scene: str) -> tuple[list[float], list[float], int, tuple[int, int]]:
    xyz = read_points(scenes_dir, scene).xyz
    frames = read_frames(scenes_dir, [scene])
    rule = stages.pairs.depth_agreement(stages.pairs.Params())
    decode_s, geometry_s = [], []
    for frame in frames:
        started = time.perf_counter()
        depth_m = stages.pairs.read_depth_metres(frame)
        decoded = time.perf_counter()
        frame_correspondences(xyz, frame, depth_m, rule)
        geometry_s.append(time.perf_counter() - decoded)
        decode_s.append(decoded - started)
    return decode_s, geometry_s, len(xyz), frames[0].depth_size


def print_color_agreement(scenes_dir: Path, pairs_dir: Path, scene: str, shift: int = 3) -> None:
    """A sanity figure, not a timing: a paired color pixel should show the scan point's colour, much
    more closely than the pixel `shift` pixels away (lighting and texture aliasing keep it above 0)."""
    points_rgb = read_points(scenes_dir, scene).rgb.astype(np.int16)
    pairs = read_scene_pairs(pairs_dir, scene)
    paired, shifted = [], []
    for frame in read_frames(scenes_dir, [scene]):
        rows = pairs.frame == frame.frame
        image = cv2.cvtColor(cv2.imread(str(frame.color_path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.int16)
        u, v = pairs.pixel[rows, 0].astype(np.int64), pairs.pixel[rows, 1].astype(np.int64)
        rgb = points_rgb[pairs.point_index[rows]]
        paired.append(np.abs(image[v, u] - rgb).mean(axis=1))
        shifted.append(np.abs(image[v, np.minimum(u + shift, image.shape[1] - 1)] - rgb).mean(axis=1))
    print(f"color agreement in {scene}: median |image - point rgb| {np.median(np.concatenate(paired)):.1f} at the paired "
          f"pixel, {np.median(np.concatenate(shifted)):.1f} {shift} pixels to the right (0-255 scale)")


if __name__ == "__main__":
    main()
