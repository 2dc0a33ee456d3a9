"""Stage `objects`: labelled object point clouds with normals -> objects.parquet (see io.objects_table).

`source: modelnet40` reads a user's `modelnet40_normal_resampled` tree, `shapenet55` Point-BERT's
`ShapeNet55-34` folder (I2P-MAE's pretraining set; no normals) and `scanobjectnn` the `h5_files` folder of
ScanObjectNN in one `variant` (OBJ-BG, OBJ-ONLY or PB-T50-RS; no normals). `source: synthetic` first writes
procedural objects in the ModelNet layout under the artefact's `source/` folder and reads them back through
the same reader. `source` names the dataset; its reader (pix2point/datasets/objects.py) lists and reads the
objects. One Ray task per class writes (synthetic) and one per class reads (a source with one file per
split, ScanObjectNN: its two h5 files are read in the driver).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pix2point.datasets.objects import OBJECT_READERS, ObjectSource
from pix2point.io import scanobjectnn
from pix2point.io.arrow import write_table
from pix2point.io.dataset_reader import ObjectFileReader, ShapeEntry, SplitFileReader
from pix2point.io.objects_table import OBJECTS_FILE, ROW_GROUP_ROWS, SOURCE_DIR, SPLITS, Objects, objects_table
from pix2point.io.paths import AbsolutePath
from pix2point.parallel import map_tasks
from pix2point.synthetic import objects as synthetic_objects


class SyntheticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # the first classes of synthetic/objects.py's CLASSES
    num_classes: int = Field(8, ge=8, le=len(synthetic_objects.CLASSES))
    train_per_class: int = Field(40, ge=1)  # shapes per class in the train split
    test_per_class: int = Field(20, ge=1)  # shapes per class in the test split
    seed: int = 0  # each shape is drawn from (seed, class, shape number)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # synthetic: procedural shapes written here; else the dataset under root (ScanObjectNN: real scans, with variant)
    source: ObjectSource = "synthetic"
    # modelnet40: the modelnet40_normal_resampled folder; shapenet55: ShapeNet55-34; scanobjectnn: h5_files
    root: AbsolutePath | None = None
    variant: scanobjectnn.Variant = "PB-T50-RS"  # source: scanobjectnn only
    synthetic: SyntheticParams = SyntheticParams()
    points_per_object: int = Field(2048, ge=1)  # Image2Point and I2P-MAE use 2048
    # first: the file's first rows (its farthest-point order, as PointNet++ loads ModelNet); random: a
    # draw without replacement seeded by (sampling_seed, shape).
    sampling: Literal["first", "random"] = "first"
    sampling_seed: int = 0  # seeds sampling random's draws, with each shape
    normalize: bool = True  # centre each shape on its centroid and scale it into the unit sphere

    @model_validator(mode="after")
    def _root_for_a_dataset(self) -> Params:
        root_folder = OBJECT_READERS[self.source].ROOT_FOLDER
        if root_folder is not None and self.root is None:
            raise ValueError(f"source {self.source!r} needs `root`, the dataset's folder ({root_folder})")
        return self


def run(params: Params, inputs: dict[str, Path], out: Path) -> dict:
    reader = OBJECT_READERS[params.source]
    if reader.LAYOUT == "file_per_split":
        class_names, result = list(reader.CLASS_NAMES), read_split_files(reader, params)
    else:
        class_names, shapes = read_index(params, out)
        by_class = [[e for e in shapes if e.label == label] for label in range(len(class_names))]
        results = map_tasks(read_class, [entries for entries in by_class if entries], desc="objects", params=params)
        result = ClassObjects(
            objects=Objects(
                points=np.concatenate([r.objects.points for r in results]),
                normals=None if results[0].objects.normals is None else np.concatenate([r.objects.normals for r in results]),
                labels=np.concatenate([r.objects.labels for r in results]),
                shapes=[shape for r in results for shape in r.objects.shapes],
            ),
            splits=[split for r in results for split in r.splits],
        )
    table = objects_table(result.objects, result.splits, class_names, up_axis=reader.UP_AXIS, normalized=params.normalize)
    write_table(table, out / OBJECTS_FILE, row_group_size=ROW_GROUP_ROWS)
    return {
        "classes": len(class_names),
        "points_per_object": params.points_per_object,
        **{f"{split}_objects": result.splits.count(split) for split in SPLITS},
    }


def read_index(params: Params, out: Path) -> tuple[list[str], list[ShapeEntry]]:
    """Class names and every shape (train first) of a per-file source; a source without a root writes its
    files into the artefact's source/ folder first."""
    reader: ObjectFileReader = OBJECT_READERS[params.source]
    root = reader.write_source(out / SOURCE_DIR, params) if reader.ROOT_FOLDER is None else params.root
    return reader.object_index(params, root)


def read_split_files(reader: SplitFileReader, params: Params) -> ClassObjects:
    """Both splits of a one-file-per-split source, each object's points drawn as `sampling` says."""
    scans = {split: reader.read_split_objects(params, split) for split in SPLITS}
    shapes = {split: reader.shape_ids(split, len(scan.labels)) for split, scan in scans.items()}
    points = [_sample_rows(cloud, shape, params) for split in SPLITS for cloud, shape in zip(scans[split].points, shapes[split])]
    objects = Objects(
        points=_normalized(np.stack(points), params), normals=None,
        labels=np.concatenate([scans[split].labels for split in SPLITS]), shapes=[s for split in SPLITS for s in shapes[split]],
    )
    return ClassObjects(objects=objects, splits=[split for split in SPLITS for _ in shapes[split]])


@dataclass(frozen=True)
class ClassObjects:
    objects: Objects
    splits: list[str]


def read_class(entries: list[ShapeEntry], params: Params) -> ClassObjects:
    """One Ray task: the point clouds of one class's shapes, in `entries` order."""
    clouds = [read_shape(e, params) for e in entries]
    objects = Objects(
        points=_normalized(np.stack([points for points, _ in clouds]), params),
        normals=None if clouds[0][1] is None else np.stack([normals for _, normals in clouds]),
        labels=np.array([e.label for e in entries], np.int16),
        shapes=[e.shape for e in entries],
    )
    return ClassObjects(objects=objects, splits=[e.split for e in entries])


def read_shape(entry: ShapeEntry, params: Params) -> tuple[np.ndarray, np.ndarray | None]:
    """([N, 3] points, [N, 3] normals or None) of one shape file, N = points_per_object."""
    reader: ObjectFileReader = OBJECT_READERS[params.source]
    return reader.read_object(entry, params.points_per_object, _sampling_rng(entry.shape, params))


def _sample_rows(cloud: np.ndarray, shape: str, params: Params) -> np.ndarray:
    rng = _sampling_rng(shape, params)
    if rng is None:
        return cloud[: params.points_per_object]
    return cloud[np.sort(rng.choice(len(cloud), size=params.points_per_object, replace=False))]


def _normalized(points: np.ndarray, params: Params) -> np.ndarray:
    return normalize_to_unit_sphere(points) if params.normalize else points


def _sampling_rng(shape: str, params: Params) -> np.random.Generator | None:
    if params.sampling == "first":
        return None
    return np.random.default_rng([params.sampling_seed, zlib.crc32(shape.encode())])


def normalize_to_unit_sphere(points: np.ndarray) -> np.ndarray:
    """[M, N, 3] clouds, each centred on its centroid and scaled so its farthest point is at distance 1."""
    centred = points - points.mean(axis=1, keepdims=True)
    radius = np.linalg.norm(centred, axis=2).max(axis=1)[:, None, None]
    return (centred / np.maximum(radius, np.finfo(np.float32).tiny)).astype(np.float32)
