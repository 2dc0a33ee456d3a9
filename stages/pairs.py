"""Stage `pairs`: for every kept frame, the scene points it sees and the color pixel each lands on.

Inputs: `scenes` (frames table, point tables, depth images) and `features2d` (which frames are kept).
One Ray task per scene reads the scene's points once and its kept frames' depth images; the
visibility test is pix2point.geometry.visibility, the output contracts pix2point.io.pairs_table and,
for PPKT's per-frame training samples, pix2point.io.samples_table.
"""

from __future__ import annotations

import contextlib
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pix2point.geometry.visibility import (
    DEPTH_LOOKUP_RULE,
    PIXEL_ROUNDING_RULE,
    DepthAgreement,
    frame_correspondences,
)
from pix2point.io.features_table import kept_frames
from pix2point.io.pairs_table import ScenePairs, ScenePairsWriter
from pix2point.io.samples_table import SceneSamplesWriter
from pix2point.io.scenes_table import FRAMES_FILE, Frame, read_frames, read_points
from pix2point.parallel import map_tasks


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depth_tolerance: float = Field(0.05, gt=0, description="metres a point may lie off the measured depth and still be seen")
    depth_tolerance_relative: float = Field(
        0.01, ge=0, description="added tolerance per metre of measured depth (sensor noise grows with distance)")
    max_depth: float = Field(10.0, gt=0, description="points farther from the camera than this (metres) are not paired")
    num_cpus: float = Field(1.0, gt=0, description="CPUs reserved by each per-scene Ray task")


@dataclass(frozen=True)
class SceneJob:
    scene: str
    frames: tuple[int, ...]  # the kept frame ids


@dataclass(frozen=True)
class SceneSummary:
    frames: int
    frames_without_pairs: int
    pairs: int
    points: int
    unseen_points: int
    peak_rss_mb: float  # of the task (see reset_peak_rss)


def run(params: Params, inputs: dict[str, Path], out: Path) -> dict:
    started = time.perf_counter()
    rule = depth_agreement(params)
    jobs = [SceneJob(scene, tuple(frames)) for scene, frames in kept_frames(inputs["features2d"]).items()]
    summaries = map_tasks(pair_scene, jobs, desc="pairs", num_cpus=params.num_cpus,
                          scenes_dir=inputs["scenes"], features_dir=inputs["features2d"], pairs_dir=out, rule=rule)
    return summarise(summaries, time.perf_counter() - started)


def depth_agreement(params: Params) -> DepthAgreement:
    return DepthAgreement(params.depth_tolerance, params.depth_tolerance_relative, params.max_depth)


def pair_scene(job: SceneJob, *, scenes_dir: Path, features_dir: Path, pairs_dir: Path,
               rule: DepthAgreement) -> SceneSummary:
    """Write pairs/<scene>.parquet and samples/<scene>.parquet for one scene, frame by frame, and return its counts."""
    reset_peak_rss()
    points = read_points(scenes_dir, job.scene)
    xyz = points.xyz
    frames = kept_frame_rows(scenes_dir, job)
    seen = np.zeros(len(xyz), bool)
    pairs_per_frame = []
    with (ScenePairsWriter(pairs_dir, job.scene, shard_metadata(rule)) as writer,
          SceneSamplesWriter(pairs_dir, job.scene, features_dir) as samples):
        for frame in frames:
            pairs = frame_pairs(xyz, frame, rule)
            writer.write(pairs)
            samples.write(frame.frame, pairs.point_index, xyz[pairs.point_index], points.rgb[pairs.point_index],
                          pairs.pixel, frame.color_size)
            seen[pairs.point_index] = True
            pairs_per_frame.append(len(pairs))
    return SceneSummary(
        frames=len(frames),
        frames_without_pairs=pairs_per_frame.count(0),
        pairs=sum(pairs_per_frame),
        points=len(xyz),
        unseen_points=int(len(xyz) - np.count_nonzero(seen)),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def reset_peak_rss() -> None:
    """Restart this process's peak-RSS count (Linux: /proc/self/clear_refs), so that a reused Ray worker
    reports this task's peak, not that of an earlier task (a teacher's, say). Where that file cannot
    be written the figure stays the worker's lifetime peak: an upper bound."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def kept_frame_rows(scenes_dir: Path, job: SceneJob) -> list[Frame]:
    """The frames-table rows of the job's kept frames, in frame order; a kept frame it lacks is an error."""
    by_id = {frame.frame: frame for frame in read_frames(scenes_dir, [job.scene])}
    missing = sorted(set(job.frames) - by_id.keys())
    if missing:
        raise ValueError(f"features2d keeps frames {missing[:10]} of scene {job.scene!r}, "
                         f"which {scenes_dir / FRAMES_FILE} does not list")
    return [by_id[frame_id] for frame_id in sorted(set(job.frames))]


def frame_pairs(xyz: np.ndarray, frame: Frame, rule: DepthAgreement) -> ScenePairs:
    point_index, pixel = frame_correspondences(xyz, frame, read_depth_metres(frame), rule)
    return ScenePairs(
        frame=np.full(len(point_index), frame.frame, np.int32),
        point_index=point_index.astype(np.int32),
        pixel=pixel.astype(np.int16),
    )


def read_depth_metres(frame: Frame) -> np.ndarray:
    """The frame's depth image as float32 metres [H, W]; 0 where the sensor measured nothing."""
    path = frame.depth_path
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"depth image {path}: missing or not a readable image")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise ValueError(f"depth image {path}: expected one 16-bit channel, got {raw.dtype} with shape {raw.shape}")
    width, height = frame.depth_size
    if raw.shape != (height, width):
        raise ValueError(f"depth image {path}: is {raw.shape[1]}x{raw.shape[0]}, "
                         f"the frames table says {width}x{height}")
    return raw.astype(np.float32) / np.float32(frame.depth_scale)


def shard_metadata(rule: DepthAgreement) -> dict[str, object]:
    return {
        "depth_tolerance": rule.tolerance,
        "depth_tolerance_relative": rule.relative_tolerance,
        "max_depth": rule.max_depth,
        "depth_lookup": DEPTH_LOOKUP_RULE,
        "pixel_rounding": PIXEL_ROUNDING_RULE,
    }


def summarise(summaries: list[SceneSummary], seconds: float) -> dict:
    totals = {key: sum(getattr(summary, key) for summary in summaries)
              for key in ("frames", "frames_without_pairs", "pairs", "points", "unseen_points")}
    return {
        "scenes": len(summaries),
        "frames": totals["frames"],
        "frames_without_pairs": totals["frames_without_pairs"],
        "pairs": totals["pairs"],
        "pairs_per_frame_mean": round(totals["pairs"] / max(totals["frames"], 1), 1),
        "unseen_point_share": round(totals["unseen_points"] / max(totals["points"], 1), 4),
        "seconds": round(seconds, 3),
        "frames_per_s": round(totals["frames"] / seconds, 2),
        "pairs_per_s": round(totals["pairs"] / seconds, 1),
        "task_peak_rss_mb": round(max((summary.peak_rss_mb for summary in summaries), default=0.0), 1),
    }
