"""The interface of a dataset reader: what the `scenes` and `objects` stages ask of the dataset a `source`
param names.

A reader is a module whose top-level names follow one of the protocols below (typing checks a module
against a Protocol). pix2point/datasets/scenes.py and datasets/objects.py map each `source` name to its reader
module, in two plain dicts; a new dataset is one reader module and one entry there (docs/design.md, "A dataset
reader"). A reader reads the stage's params through the `*SourceParams` protocols, which name every param it may read.

Scene readers (`SceneReader`) list the scenes of a dataset folder, split them into train and val, and read
one scene: its labelled points and, for an RGB-D source (`FRAMES`), its usable frames. Object readers list
and read labelled object point clouds, either one file per object (`ObjectFileReader`: an index of
`ShapeEntry`, then one object at a time, in one Ray task per class) or one file per split
(`SplitFileReader`: a whole split at once).

A source whose `ROOT_FOLDER` is None needs no `root`: it writes its own data (synthetic) under the
artefact's source/ folder first (`write_source` for objects; per scene in `read_source_scene` for scenes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from pix2point.io.scenes_table import Frame, ScenePoints


class SceneSourceParams(Protocol):
    """The params of the scenes stage (stages/scenes.py `Params`) a scene reader may read."""

    root: Path | None
    scenes: list[str] | None
    depth_scale: float
    frame_step: int
    axis_align: bool
    val_scenes: list[str] | None
    val_fraction: float
    split_seed: int
    s3dis_val_area: int

    @property
    def split_files(self) -> SplitFilesParams | None: ...

    @property
    def synthetic(self) -> SyntheticScenesParams: ...


class SplitFilesParams(Protocol):
    train: Path
    val: Path


class SyntheticScenesParams(Protocol):
    num_scenes: int
    frames: int
    color_size: tuple[int, int]
    depth_size: tuple[int, int]
    points: int
    seed: int


@dataclass(frozen=True)
class SceneRef:
    """One scene of a listing, as the Ray task that reads it gets it."""

    root: Path  # the dataset's folder; for a source that writes its own data, the artefact's source/
    name: str
    folder: Path  # the scene's folder (or file, for a one-file-per-scene dataset), relative to root
    index: int  # position in the source's listing (a generated source's seed)


@dataclass(frozen=True)
class ReadScene:
    points: ScenePoints
    frames: list[Frame] = field(default_factory=list)  # usable frames; empty for a point-only source
    skipped: Counter = field(default_factory=Counter)  # frames left out, by reason
    unlabelled: Counter = field(default_factory=Counter)  # io/scannet.read_scan_counting's counts


class SceneReader(Protocol):
    ROOT_FOLDER: str | None  # what `root` must be (named in the error when it is missing); None: no root
    FRAMES: bool  # RGB-D frames with poses (every stage), or points only (finetune, evaluate, detect)
    CLASS_NAMES: tuple[str, ...]  # the label names of the point tables

    def scene_folders(self, params: SceneSourceParams) -> dict[str, Path]:
        """Scene name -> its folder (or file) relative to the root, in reading order. The reader's error (a ValueError
        naming the folder) when the root lacks its layout."""

    def scene_splits(self, params: SceneSourceParams, scenes: list[str], warn: bool) -> dict[str, str]:
        """Scene -> "train" | "val", for the scenes that enter the artefact (all of `scenes`, unless the
        source leaves some out); `warn`: log what a run should know (scenes left out). Reads no scene."""

    def split_remedy(self, stage: str, params: SceneSourceParams) -> str:
        """The params of scenes stage `stage` that move scenes between train and val, for an error."""

    def read_source_scene(self, params: SceneSourceParams, scene: SceneRef) -> ReadScene:
        """One scene's points (frames for an RGB-D source); a ray task. Errors name the file."""


class ObjectSourceParams(Protocol):
    """The params of the objects stage (stages/objects.py `Params`) an object reader may read."""

    root: Path | None
    variant: str
    points_per_object: int

    @property
    def synthetic(self) -> SyntheticObjectsParams: ...


class SyntheticObjectsParams(Protocol):
    num_classes: int
    train_per_class: int
    test_per_class: int
    seed: int


@dataclass(frozen=True)
class ShapeEntry:
    """One object of a file-per-object dataset's listing."""

    shape: str  # e.g. night_stand_0007
    label: int  # index into the class names
    split: str  # train | test
    path: Path


class ObjectReader(Protocol):
    ROOT_FOLDER: str | None  # what `root` must be (named in the error when it is missing); None: no root
    UP_AXIS: int  # the objects' up axis (0 x, 1 y, 2 z), recorded in objects.parquet
    LAYOUT: Literal["file_per_object", "file_per_split"]


class ObjectFileReader(ObjectReader, Protocol):
    def object_index(self, params: ObjectSourceParams, root: Path) -> tuple[list[str], list[ShapeEntry]]:
        """(class names, every object: train first, each split in the dataset's order)."""

    def read_object(self, entry: ShapeEntry, count: int,
                    rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray | None]:
        """([count, 3] float32 points, [count, 3] normals or None) of one object: its first `count` rows,
        or `rng`'s draw without replacement. ObjectReadError naming the file."""


class SplitObjects(Protocol):
    points: np.ndarray  # [M, N, 3] float32, N >= the points per object asked
    labels: np.ndarray  # [M] int16


class SplitFileReader(ObjectReader, Protocol):
    CLASS_NAMES: tuple[str, ...]

    def read_split_objects(self, params: ObjectSourceParams, split: str) -> SplitObjects:
        """Every object of one split (train | test), in file order. ObjectReadError naming the file."""

    def shape_ids(self, split: str, count: int) -> list[str]:
        """The names of a split's `count` objects, in file order (they seed the `random` sampling)."""


class GeneratedObjects(ObjectFileReader, Protocol):
    def write_source(self, root: Path, params: ObjectSourceParams) -> Path:
        """Write the source's files under `root` (Ray tasks); returns the root to index."""
