"""Stage `scenes`: RGB-D frames, camera geometry and labelled scans -> frames table, point tables, splits.

`source` names the dataset; its reader (pix2point/datasets/scenes.py) lists, splits and reads the scenes.
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
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pix2point.datasets.scenes import SCENE_READERS, SceneSource
from pix2point.io.arrow import write_table
from pix2point.io.dataset_reader import SceneReader, SceneRef
from pix2point.io.paths import AbsolutePath
from pix2point.io.scenes_table import FRAMES_FILE, SOURCE_DIR, SPLITS_FILE, SPLITS_SCHEMA, frames_table, points_path, points_table
from pix2point.parallel import map_tasks

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
    source: SceneSource = "synthetic"
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
        reader = SCENE_READERS[self.source]
        if reader.ROOT_FOLDER is not None and self.root is None:
            raise ValueError(f"source {self.source!r} needs `root`, the dataset's folder ({reader.ROOT_FOLDER})")
        if not reader.FRAMES and (self.val_scenes is not None or self.scenes is not None):
            raise ValueError(f"source {self.source!r} takes its scenes and split from its layout: leave out scenes and val_scenes")
        if self.split_files is not None and (self.source != "scannet" or self.val_scenes is not None):
            raise ValueError("split_files are ScanNet's official lists: only for source 'scannet', and not with val_scenes")
        return self


def run(params: Params, inputs: dict[str, Path], out: Path) -> dict:
    reader = SCENE_READERS[params.source]
    root = out / SOURCE_DIR if reader.ROOT_FOLDER is None else params.root
    folders = reader.scene_folders(params)
    splits = reader.scene_splits(params, list(folders), warn=True)
    jobs = [SceneRef(root, name, folder, index) for index, (name, folder) in enumerate(folders.items()) if name in splits]
    if not reader.FRAMES:
        return run_point_only(jobs, splits, params, out)
    results = map_tasks(
        ingest_scene, jobs, desc="scenes",
        out=out, params=params,
    )
    frames = [frame for result in results for frame in result.frames]
    # a generated source's images are in the artefact: a data root relative to it (io/scenes_table.py)
    data_root = SOURCE_DIR if reader.ROOT_FOLDER is None else str(root)
    write_table(frames_table(frames, data_root), out / FRAMES_FILE)
    write_splits(splits, out)
    skipped = sum((result.skipped for result in results), Counter())
    if skipped:
        log.warning("skipped %d frames: %s", sum(skipped.values()), dict(skipped))
    unlabelled = sum((result.unlabelled for result in results), Counter())
    return {
        "scenes": len(jobs),
        "unlisted_scenes": len(folders) - len(jobs),  # read but in neither split file
        "train_scenes": sum(split == "train" for split in splits.values()),
        "val_scenes": sum(split == "val" for split in splits.values()),
        "frames": len(frames),
        "points": sum(result.points for result in results),
        "labelled_points": sum(result.labelled_points for result in results),
        "skipped_frames": sum(skipped.values()),
        "skipped_frames_by_reason": dict(skipped),
        # vertices left unlabelled for an id outside NYU40 in labels.ply, scans without labels.ply (io/scannet.py)
        "unknown_nyu40_id_points": unlabelled["unknown_nyu40_id_points"],
        "scans_without_labels": unlabelled["scans_without_labels"],
    }


@dataclass(frozen=True)
class IngestedScene:
    frames: list
    skipped: Counter
    unlabelled: Counter  # io/scannet.read_scan_counting's counts
    points: int
    labelled_points: int


def ingest_scene(job: SceneRef, out: Path, params: Params) -> IngestedScene:
    """One Ray task: read one scene through the source's reader (a synthetic one writes it first), write its
    point table; its frames go to the driver."""
    reader = SCENE_READERS[params.source]
    scene = reader.read_source_scene(params, job)
    write_table(points_table(scene.points, reader.CLASS_NAMES), points_path(out, job.name))
    return IngestedScene(
        frames=scene.frames, skipped=scene.skipped, unlabelled=scene.unlabelled,
        points=len(scene.points.xyz), labelled_points=int((scene.points.label >= 0).sum()),
    )


def run_point_only(jobs: list[SceneRef], splits: dict[str, str], params: Params, out: Path) -> dict:
    """Points tables and splits of a point-only source; one Ray task per scene."""
    counts = map_tasks(ingest_point_scene, jobs, desc="scenes", out=out, params=params)
    write_splits(dict(sorted(splits.items())), out)
    return {
        "scenes": len(jobs),
        "train_scenes": sum(split == "train" for split in splits.values()),
        "val_scenes": sum(split == "val" for split in splits.values()),
        "frames": 0,
        "points": sum(points for points, _ in counts),
        "labelled_points": sum(labelled for _, labelled in counts),
    }


def ingest_point_scene(job: SceneRef, out: Path, params: Params) -> tuple[int, int]:
    """One Ray task: read a scene of a point-only source, write its point table; (points, labelled points)."""
    reader = SCENE_READERS[params.source]
    points = reader.read_source_scene(params, job).points
    write_table(points_table(points, reader.CLASS_NAMES), points_path(out, job.name))
    return len(points.xyz), int((points.label >= 0).sum())


def write_splits(splits: dict[str, str], out: Path) -> None:
    write_table(pa.Table.from_pydict({"scene": list(splits), "split": list(splits.values())}, schema=SPLITS_SCHEMA), out / SPLITS_FILE)


def planned_splits(params: Params) -> dict[str, str]:
    """Scene -> train | val as `run` assigns them, from the dataset folder's listing alone (no scene is read):
    what a stage that scores a split can check before the run starts. The reader's error (a ValueError naming
    the folder) when the root does not have the source's layout."""
    reader: SceneReader = SCENE_READERS[params.source]
    return reader.scene_splits(params, list(reader.scene_folders(params)), warn=False)


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
    return SCENE_READERS[params.source].split_remedy(stage, params)
