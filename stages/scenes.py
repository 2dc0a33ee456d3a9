"""Stage `scenes`: RGB-D frames, camera geometry and labelled scans -> frames table, point tables, splits.

`source: scannet` reads a user's ScanNet export; `source: synthetic` first writes procedural rooms in the
same layout under the artefact's `source/` folder and reads them back through the same reader.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pix2point.io.paths import AbsolutePath
from pix2point.io import scannet
from pix2point.io.arrow import write_table
from pix2point.io.scenes_table import (
    FRAMES_FILE, SCANNET20_CLASS_NAMES, SOURCE_DIR, SPLITS_FILE, SPLITS_SCHEMA, frames_table, points_path, points_table,
)
from pix2point.parallel import map_tasks
from pix2point.synthetic.scene import SyntheticSceneConfig, write_synthetic_scene

log = logging.getLogger(__name__)


class SyntheticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_scenes: int = Field(8, ge=2)
    frames: int = Field(30, ge=1)
    color_size: tuple[int, int] = (320, 240)
    depth_size: tuple[int, int] = (224, 168)
    points: int = Field(60_000, ge=100)
    seed: int = 0


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["synthetic", "scannet"] = "synthetic"
    root: AbsolutePath | None = None  # the ScanNet export (source: scannet)
    scenes: list[str] | None = None  # a subset of the root's scenes; all when unset
    synthetic: SyntheticParams = SyntheticParams()
    depth_scale: float = Field(1000.0, gt=0)
    frame_step: int = Field(1, ge=1)  # every k-th frame enters the dataset (PPKT used every 25th of ScanNet)
    val_scenes: list[str] | None = None  # explicit validation scenes, e.g. ScanNet's official val list
    val_fraction: float = Field(0.25, gt=0, lt=1)  # else this share of scenes, drawn with split_seed
    split_seed: int = 0

    @model_validator(mode="after")
    def _root_for_scannet(self) -> Params:
        if self.source == "scannet" and self.root is None:
            raise ValueError("source 'scannet' needs `root`, the directory of exported scenes")
        return self


@dataclass(frozen=True)
class SceneJob:
    root: Path
    scene: str
    synthetic_seed: int | None  # write the scene first when set


def run(params: Params, inputs: dict[str, Path], out: Path) -> dict:
    if params.source == "synthetic":
        root, data_root = out / SOURCE_DIR, SOURCE_DIR
        names = [f"scene{i:04d}_00" for i in range(params.synthetic.num_scenes)]
        jobs = [SceneJob(root, name, params.synthetic.seed * 100_003 + i) for i, name in enumerate(names)]
    else:
        root, data_root = params.root, str(params.root)
        names = params.scenes or scannet.list_scenes(root)
        jobs = [SceneJob(root, name, None) for name in names]
    results = map_tasks(
        ingest_scene, jobs, desc="scenes",
        out=out, params=params,
    )
    frames = [frame for result in results for frame in result.frames]
    write_table(frames_table(frames, data_root), out / FRAMES_FILE)
    splits = assign_splits(names, params)
    write_table(pa.Table.from_pydict({"scene": list(splits), "split": list(splits.values())}, schema=SPLITS_SCHEMA), out / SPLITS_FILE)
    skipped = sum((result.skipped for result in results), Counter())
    if skipped:
        log.warning("skipped %d frames: %s", sum(skipped.values()), dict(skipped))
    return {
        "scenes": len(names),
        "train_scenes": sum(split == "train" for split in splits.values()),
        "val_scenes": sum(split == "val" for split in splits.values()),
        "frames": len(frames),
        "points": sum(result.points for result in results),
        "labelled_points": sum(result.labelled_points for result in results),
        "skipped_frames": sum(skipped.values()),
        "skipped_frames_by_reason": dict(skipped),
    }


@dataclass(frozen=True)
class IngestedScene:
    frames: list
    skipped: Counter
    points: int
    labelled_points: int


def ingest_scene(job: SceneJob, out: Path, params: Params) -> IngestedScene:
    """One Ray task: (write the synthetic scene,) read and check its frames, write its point table."""
    if job.synthetic_seed is not None:
        synthetic = params.synthetic
        config = SyntheticSceneConfig(
            frames=synthetic.frames, color_size=synthetic.color_size, depth_size=synthetic.depth_size,
            points=synthetic.points, depth_scale=params.depth_scale,
        )
        write_synthetic_scene(job.root, job.scene, job.synthetic_seed, config)
    scene_frames = scannet.read_scene_frames(job.root, job.scene, params.depth_scale, params.frame_step)
    points = scannet.read_scan(job.root / job.scene)
    write_table(points_table(points, SCANNET20_CLASS_NAMES), points_path(out, job.scene))
    return IngestedScene(
        frames=scene_frames.frames, skipped=scene_frames.skipped,
        points=len(points.xyz), labelled_points=int((points.label >= 0).sum()),
    )


def assign_splits(names: list[str], params: Params) -> dict[str, str]:
    if params.val_scenes is not None:
        unknown = sorted(set(params.val_scenes) - set(names))
        if unknown:
            raise ValueError(f"scenes: val_scenes {unknown} are not among the scenes read")
        val = set(params.val_scenes)
    else:
        count = max(1, round(len(names) * params.val_fraction)) if len(names) > 1 else 0
        val = set(np.random.default_rng(params.split_seed).choice(sorted(names), size=count, replace=False))
    return {name: "val" if name in val else "train" for name in sorted(names)}
