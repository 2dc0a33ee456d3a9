"""The `objects` artefact: labelled object point clouds with normals, for object-level methods.

    <artefact>/objects.parquet   one row per shape: shape (string), label (int16), split (train | test),
                                 points and normals (fixed_shape_tensor float32 [N, 3]); no normals
                                 column for a source without normals (ShapeNet-55, ScanObjectNN)
    <artefact>/source/           (synthetic source only) the generated ModelNet-layout tree

Schema metadata: class_names (JSON list; label i is class_names[i]), points_per_object, up_axis (0, 1, 2
for x, y, z), normalized (true: each shape centred on its centroid and scaled into the unit sphere).
Rows are grouped by split, then ordered by label and shape, ROW_GROUP_ROWS per Parquet row group, so
reading one split skips the other's row groups.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pix2point.io.arrow import read_metadata, tensor_column, tensor_column_to_numpy, with_metadata

OBJECTS_FILE = "objects.parquet"
SOURCE_DIR = "source"
SPLITS = ("train", "test")
ROW_GROUP_ROWS = 256  # 12 MB of points and normals per row group at 2048 points


class Objects(NamedTuple):
    points: np.ndarray  # [M, N, 3] float32
    normals: np.ndarray | None  # [M, N, 3] float32, unit length; None for a source without normals
    labels: np.ndarray  # [M] int16
    shapes: list[str]


def objects_path(objects_dir: Path) -> Path:
    return objects_dir / OBJECTS_FILE


def objects_schema(points_per_object: int, with_normals: bool = True) -> pa.Schema:
    cloud = pa.fixed_shape_tensor(pa.float32(), (points_per_object, 3))
    return pa.schema([
        pa.field("shape", pa.string(), nullable=False),
        pa.field("label", pa.int16(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("points", cloud, nullable=False),
        *([pa.field("normals", cloud, nullable=False)] if with_normals else []),
    ])


def objects_table(
    objects: Objects, splits: list[str], class_names: list[str], *, up_axis: int, normalized: bool,
) -> pa.Table:
    """Rows for `objects` (with each row's split), in the order and with the metadata the module docstring gives."""
    order = np.lexsort((np.array(objects.shapes), objects.labels, np.array(splits)))
    table = pa.Table.from_arrays(
        [
            pa.array([objects.shapes[i] for i in order], pa.string()),
            pa.array(objects.labels[order].astype(np.int16)),
            pa.array([splits[i] for i in order], pa.string()),
            tensor_column(objects.points[order].astype(np.float32)),
            *([] if objects.normals is None else [tensor_column(objects.normals[order].astype(np.float32))]),
        ],
        schema=objects_schema(objects.points.shape[1], with_normals=objects.normals is not None),
    )
    metadata = {
        "class_names": list(class_names), "points_per_object": objects.points.shape[1],
        "up_axis": up_axis, "normalized": normalized,
    }
    return with_metadata(table, metadata)


def read_objects(objects_dir: Path, split: str) -> Objects:
    path = objects_path(objects_dir)
    if split not in SPLITS:
        raise ValueError(f"{path}: no split {split!r}; splits are {SPLITS}")
    table = pq.read_table(path, filters=pc.field("split") == split)
    return Objects(
        points=tensor_column_to_numpy(table["points"]),
        normals=tensor_column_to_numpy(table["normals"]) if "normals" in table.column_names else None,
        labels=table["label"].to_numpy(),
        shapes=table["shape"].to_pylist(),
    )


def class_names(objects_dir: Path) -> list[str]:
    return read_metadata(objects_path(objects_dir))["class_names"]


def objects_metadata(objects_dir: Path) -> dict[str, object]:
    """Every metadata entry of the module docstring."""
    return read_metadata(objects_path(objects_dir))
