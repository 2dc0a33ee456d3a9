"""Stage `objects`: labelled object point clouds with normals -> objects.parquet (see io.objects_table).

`source: modelnet40` reads a user's `modelnet40_normal_resampled` tree; `source: synthetic` first writes
procedural objects in the same layout under the artefact's `source/` folder and reads them back through
the same reader. One Ray task per class writes (synthetic) and one per class reads.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pix2point.io.paths import AbsolutePath
from pix2point.io import modelnet
from pix2point.io.arrow import write_table
from pix2point.io.objects_table import OBJECTS_FILE, ROW_GROUP_ROWS, SOURCE_DIR, SPLITS, Objects, objects_table
from pix2point.parallel import map_tasks
from pix2point.synthetic import objects as synthetic_objects


class SyntheticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_classes: int = Field(8, ge=8, le=len(synthetic_objects.CLASSES))
    train_per_class: int = Field(40, ge=1)
    test_per_class: int = Field(20, ge=1)
    seed: int = 0


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["synthetic", "modelnet40"] = "synthetic"
    root: AbsolutePath | None = None  # the modelnet40_normal_resampled directory (source: modelnet40)
    synthetic: SyntheticParams = SyntheticParams()
    points_per_object: int = Field(2048, ge=1)  # Image2Point and I2P-MAE use 2048
    # first: the file's first rows (its farthest-point order, as PointNet++ loads ModelNet); random: a
    # draw without replacement seeded by (sampling_seed, shape).
    sampling: Literal["first", "random"] = "first"
    sampling_seed: int = 0
    normalize: bool = True  # centre each shape on its centroid and scale it into the unit sphere

    @model_validator(mode="after")
    def _root_for_modelnet(self) -> Params:
        if self.source == "modelnet40" and self.root is None:
            raise ValueError("source 'modelnet40' needs `root`, the modelnet40_normal_resampled directory")
        return self


def run(params: Params, inputs: dict[str, Path], out: Path) -> dict:
    root = write_synthetic_source(out / SOURCE_DIR, params) if params.source == "synthetic" else params.root
    index = modelnet.read_index(root)
    by_class = [[e for e in index.shapes if e.label == label] for label in range(len(index.class_names))]
    results = map_tasks(read_class, [entries for entries in by_class if entries], desc="objects", params=params)
    objects = Objects(
        points=np.concatenate([r.objects.points for r in results]),
        normals=np.concatenate([r.objects.normals for r in results]),
        labels=np.concatenate([r.objects.labels for r in results]),
        shapes=[shape for r in results for shape in r.objects.shapes],
    )
    splits = [split for r in results for split in r.splits]
    table = objects_table(objects, splits, index.class_names, up_axis=modelnet.UP_AXIS, normalized=params.normalize)
    write_table(table, out / OBJECTS_FILE, row_group_size=ROW_GROUP_ROWS)
    return {
        "classes": len(index.class_names),
        "points_per_object": params.points_per_object,
        **{f"{split}_objects": splits.count(split) for split in SPLITS},
    }


def write_synthetic_source(root: Path, params: Params) -> Path:
    """A ModelNet-layout tree of synthetic objects: shape numbers 1..train_per_class train, the next test."""
    synthetic = params.synthetic
    classes = synthetic_objects.CLASSES[: synthetic.num_classes]
    numbers = {
        "train": list(range(1, synthetic.train_per_class + 1)),
        "test": list(range(synthetic.train_per_class + 1, synthetic.train_per_class + synthetic.test_per_class + 1)),
    }
    split_shapes = {split: [modelnet.shape_id(c.name, n) for c in classes for n in nums] for split, nums in numbers.items()}
    synthetic_objects.write_index(root, [c.name for c in classes], split_shapes)
    map_tasks(
        synthetic_objects.write_class_shapes, list(range(len(classes))), desc="synthetic objects",
        root=root, numbers=numbers["train"] + numbers["test"], count=params.points_per_object, seed=synthetic.seed,
    )
    return root


@dataclass(frozen=True)
class ClassObjects:
    objects: Objects
    splits: list[str]


def read_class(entries: list[modelnet.ShapeEntry], params: Params) -> ClassObjects:
    """One Ray task: the point clouds of one class's shapes, in `entries` order."""
    clouds = [modelnet.read_shape(e.path, params.points_per_object, _sampling_rng(e.shape, params)) for e in entries]
    points = np.stack([points for points, _ in clouds])
    if params.normalize:
        points = normalize_to_unit_sphere(points)
    objects = Objects(
        points=points,
        normals=np.stack([normals for _, normals in clouds]),
        labels=np.array([e.label for e in entries], np.int16),
        shapes=[e.shape for e in entries],
    )
    return ClassObjects(objects=objects, splits=[e.split for e in entries])


def _sampling_rng(shape: str, params: Params) -> np.random.Generator | None:
    if params.sampling == "first":
        return None
    return np.random.default_rng([params.sampling_seed, zlib.crc32(shape.encode())])


def normalize_to_unit_sphere(points: np.ndarray) -> np.ndarray:
    """[M, N, 3] clouds, each centred on its centroid and scaled so its farthest point is at distance 1."""
    centred = points - points.mean(axis=1, keepdims=True)
    radius = np.linalg.norm(centred, axis=2).max(axis=1)[:, None, None]
    return (centred / np.maximum(radius, np.finfo(np.float32).tiny)).astype(np.float32)
