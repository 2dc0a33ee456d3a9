"""Stage `scenes`: RGB-D frames, camera geometry and labelled scans -> frames table, point tables, splits.

`source: scannet` reads a user's ScanNet export; `source: synthetic` first writes procedural rooms in the
same layout under the artefact's `source/` folder and reads them back through the same reader.

Point-only sources, for finetune and evaluate (no frames.parquet: features2d, pairs and pretrain refuse
them, see scenes_table.read_frames): `pointcept_scannet` reads Pointcept's preprocessed ScanNet (its
train/ and val/ folders are the split), `s3dis` the Stanford3dDataset_v1.2_Aligned_Version tree (the
rooms of `s3dis_val_area` are val, the others train).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pix2point.io.paths import AbsolutePath
from pix2point.io import pointcept_scannet, s3dis, scannet, scannet_split
from pix2point.io.arrow import write_table
from pix2point.io.scenes_table import (
    FRAMES_FILE, SCANNET20_CLASS_NAMES, SOURCE_DIR, SPLITS_FILE, SPLITS_SCHEMA, frames_table, points_path, points_table,
)
from pix2point.parallel import map_tasks
from pix2point.synthetic.scene import SyntheticSceneConfig, write_synthetic_scene

log = logging.getLogger(__name__)


class SyntheticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_scenes: int = Field(8, ge=2)  # procedural rooms written, split into train/val by val_fraction
    frames: int = Field(30, ge=1)  # RGB-D frames along each room's camera path
    color_size: tuple[int, int] = (320, 240)  # (width, height) pixels of the color images
    # (width, height) pixels of the depth maps; differs from color, as in ScanNet
    depth_size: tuple[int, int] = (224, 168)
    points: int = Field(60_000, ge=100)  # points sampled on each room's surfaces for its scan
    seed: int = 0  # room i is drawn from seed * 100003 + i


class SplitFiles(BaseModel):
    """ScanNet's official scene lists, from the ScanNet repository's Tasks/Benchmark/ folder."""

    model_config = ConfigDict(extra="forbid")

    train: AbsolutePath  # scannetv2_train.txt
    val: AbsolutePath  # scannetv2_val.txt


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # synthetic: procedural RGB-D rooms written here; scannet: exported ScanNet RGB-D scenes; pointcept_scannet,
    # s3dis: point-only scenes (Pointcept's preprocessed ScanNet, S3DIS rooms), for finetuning and evaluation
    source: Literal["synthetic", "scannet", "pointcept_scannet", "s3dis"] = "synthetic"
    root: AbsolutePath | None = None  # the dataset's folder (all sources but synthetic)
    scenes: list[str] | None = None  # a subset of the root's scenes; all when unset
    synthetic: SyntheticParams = SyntheticParams()
    depth_scale: float = Field(1000.0, gt=0)  # depth PNG value per metre; ScanNet: 1000 (millimetres)
    frame_step: int = Field(1, ge=1)  # every k-th frame enters the dataset (PPKT used every 25th of ScanNet)
    # ScanNet's axisAlignment (<scene>.txt) applied to the scan and the camera poses, so walls and boxes lie
    # along the axes (VoteNet's and the detection benchmark's frame); off keeps each scan in its own frame.
    axis_align: bool = True
    # The split (source scannet): ScanNet's official lists (scenes in neither are left out), or explicit
    # val_scenes, or else val_fraction of the rooms drawn with split_seed, all scans of a room on one side.
    split_files: SplitFiles | None = None
    val_scenes: list[str] | None = None  # scenes that form val, the rest train; None: split_files or val_fraction
    val_fraction: float = Field(0.25, gt=0, lt=1)  # share of rooms in val when neither val_scenes nor split_files
    split_seed: int = 0  # seed of the random val_fraction split
    s3dis_val_area: int = Field(5, ge=1, le=6)  # S3DIS's usual protocol holds Area 5 out

    @model_validator(mode="after")
    def _root_for_a_dataset(self) -> Params:
        if self.source != "synthetic" and self.root is None:
            raise ValueError(f"source {self.source!r} needs `root`, the dataset's folder ({ROOT_FOLDERS[self.source]})")
        if self.source in POINT_ONLY_SOURCES and (self.val_scenes is not None or self.scenes is not None):
            raise ValueError(f"source {self.source!r} takes its scenes and split from its layout: leave out scenes and val_scenes")
        if self.split_files is not None and (self.source != "scannet" or self.val_scenes is not None):
            raise ValueError("split_files are ScanNet's official lists: only for source 'scannet', and not with val_scenes")
        return self


ROOT_FOLDERS = {
    "scannet": "the directory of exported scenes", "pointcept_scannet": "Pointcept's scannet folder with train/ and val/",
    "s3dis": "Stanford3dDataset_v1.2_Aligned_Version",
}
POINT_ONLY_SOURCES = ("pointcept_scannet", "s3dis")


@dataclass(frozen=True)
class SceneJob:
    root: Path
    scene: str
    synthetic_seed: int | None  # write the scene first when set


def run(params: Params, inputs: dict[str, Path], out: Path) -> dict:
    if params.source in POINT_ONLY_SOURCES:
        return run_point_only(params, out)
    names = scene_names(params)
    if params.source == "synthetic":
        root, data_root = out / SOURCE_DIR, SOURCE_DIR
        jobs = [SceneJob(root, name, params.synthetic.seed * 100_003 + i) for i, name in enumerate(names)]
    else:
        root, data_root = params.root, str(params.root)
        jobs = [SceneJob(root, name, None) for name in names]
    if params.source == "scannet" and params.val_scenes is None and params.split_files is None:
        log.warning("no split_files: a random split of the rooms (val_fraction %s), not ScanNet's official one", params.val_fraction)
    splits = assign_splits(names, params, warn=True)
    jobs = [job for job in jobs if job.scene in splits]
    results = map_tasks(
        ingest_scene, jobs, desc="scenes",
        out=out, params=params,
    )
    frames = [frame for result in results for frame in result.frames]
    write_table(frames_table(frames, data_root), out / FRAMES_FILE)
    write_splits(splits, out)
    skipped = sum((result.skipped for result in results), Counter())
    if skipped:
        log.warning("skipped %d frames: %s", sum(skipped.values()), dict(skipped))
    return {
        "scenes": len(jobs),
        "unlisted_scenes": len(names) - len(jobs),  # read but in neither split file
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
    points, frames = scannet.read_scan(job.root / job.scene), scene_frames.frames
    if params.axis_align:
        points, frames = scannet.aligned(points, frames, scannet.read_axis_alignment(job.root / job.scene))
    write_table(points_table(points, SCANNET20_CLASS_NAMES), points_path(out, job.scene))
    return IngestedScene(
        frames=frames, skipped=scene_frames.skipped,
        points=len(points.xyz), labelled_points=int((points.label >= 0).sum()),
    )


@dataclass(frozen=True)
class PointSceneJob:
    scene: str
    path: Path  # the scene's folder in the source


def run_point_only(params: Params, out: Path) -> dict:
    """Points tables and splits of a point-only source; one Ray task per scene."""
    if params.source == "s3dis":
        jobs = [PointSceneJob(name, path) for name, path in s3dis.list_rooms(params.root).items()]
    else:
        jobs = [PointSceneJob(name, params.root / split / name) for name, split in pointcept_scannet.list_scenes(params.root).items()]
    splits = planned_splits(params)
    counts = map_tasks(ingest_point_scene, jobs, desc="scenes", out=out, source=params.source)
    write_splits(dict(sorted(splits.items())), out)
    return {
        "scenes": len(jobs),
        "train_scenes": sum(split == "train" for split in splits.values()),
        "val_scenes": sum(split == "val" for split in splits.values()),
        "frames": 0,
        "points": sum(points for points, _ in counts),
        "labelled_points": sum(labelled for _, labelled in counts),
    }


def ingest_point_scene(job: PointSceneJob, out: Path, source: str) -> tuple[int, int]:
    """One Ray task: read a scene of a point-only source, write its point table; (points, labelled points)."""
    if source == "s3dis":
        points, names = s3dis.read_room(job.path), s3dis.S3DIS13_CLASS_NAMES
    else:
        points, names = pointcept_scannet.read_scene(job.path), SCANNET20_CLASS_NAMES
    write_table(points_table(points, names), points_path(out, job.scene))
    return len(points.xyz), int((points.label >= 0).sum())


def write_splits(splits: dict[str, str], out: Path) -> None:
    write_table(pa.Table.from_pydict({"scene": list(splits), "split": list(splits.values())}, schema=SPLITS_SCHEMA), out / SPLITS_FILE)


def scene_names(params: Params) -> list[str]:
    """The scenes `run` reads (sources synthetic and scannet): generated names, or the root's listing."""
    if params.source == "synthetic":
        return [f"scene{i:04d}_00" for i in range(params.synthetic.num_scenes)]
    return params.scenes or scannet.list_scenes(params.root)


def assign_splits(names: list[str], params: Params, warn: bool = False) -> dict[str, str]:
    """Scene -> train | val for the scenes read (see Params); with split_files, only the listed ones (`warn`:
    log the scenes left out)."""
    if params.val_scenes is not None:
        unknown = sorted(set(params.val_scenes) - set(names))
        if unknown:
            raise ValueError(f"scenes: val_scenes {unknown} are not among the scenes read")
        return {name: "val" if name in params.val_scenes else "train" for name in sorted(names)}
    if params.split_files is not None:
        return listed_splits(names, params.split_files, warn)
    return scannet_split.grouped_random_split(names, params.val_fraction, params.split_seed)


def planned_splits(params: Params) -> dict[str, str]:
    """Scene -> train | val as `run` assigns them, from the dataset folder's listing alone (no scene is read):
    what a stage that scores a split can check before the run starts. SceneReadError or S3DISReadError (both
    ValueErrors) when the root does not have the source's layout."""
    if params.source == "s3dis":
        return {name: "val" if s3dis.area_of(name) == params.s3dis_val_area else "train" for name in s3dis.list_rooms(params.root)}
    if params.source == "pointcept_scannet":
        return dict(pointcept_scannet.list_scenes(params.root))
    return assign_splits(scene_names(params), params)


def require_splits(scenes: Any, splits: tuple[str, ...]) -> None:
    """For a stage that trains or scores on `splits` of its scenes input: ValueError naming the params that
    fix it when `scenes` (the upstream engine Stage, as a stage's `preflight` receives it) would put no scene
    in one of them. Says nothing when the split cannot be planned (a missing root is the path check's error,
    a root of the wrong layout the scenes stage's own), or when the input is not a scenes stage."""
    if not isinstance(scenes.params, Params):
        return
    try:
        planned = planned_splits(scenes.params)
    except (ValueError, OSError):
        return
    counts = Counter(planned.values())
    empty = [split for split in splits if not counts[split]]
    if empty:
        found = ", ".join(f"{counts[split]} {split}" for split in ("train", "val"))
        raise ValueError(f"needs scenes in {' and '.join(splits)}, and stage {scenes.name!r} puts none in "
                         f"{' or '.join(empty)} ({found}); {_split_remedy(scenes.name, scenes.params)}")


def _split_remedy(stage: str, params: Params) -> str:
    """The params of scenes stage `stage` that move scenes between train and val, for its source."""
    if params.source == "s3dis":
        return f"set {stage}.s3dis_val_area to another of the areas under {params.root}"
    if params.source == "pointcept_scannet":
        return f"{params.root}'s train/ and val/ folders are the split: each needs a scene folder"
    remedy = f"set {stage}.val_scenes or {stage}.val_fraction"
    if params.source == "synthetic":
        return f"{remedy}, or raise {stage}.synthetic.num_scenes"
    return f"{remedy} (all scans of a room go to one side), or {stage}.split_files"


def listed_splits(names: list[str], files: SplitFiles, warn: bool = False) -> dict[str, str]:
    official = scannet_split.official_split(files.train, files.val)
    unlisted = sorted(set(names) - set(official))
    if unlisted and warn:
        log.warning("%d scenes are in neither %s nor %s and are left out: %s", len(unlisted), files.train, files.val, unlisted[:5])
    absent = set(official) - set(names)
    if absent and warn:
        log.warning("%d scenes of the split files are not among the scenes read", len(absent))
    splits = {name: official[name] for name in sorted(names) if name in official}
    if set(splits.values()) != {"train", "val"}:
        raise scannet.SceneReadError(
            f"none of the scenes read is listed in {files.train if 'train' not in splits.values() else files.val}")
    return splits
