"""The `objects` artefact: labelled object point clouds with normals, for object-level methods.

    <artefact>/objects.parquet   one row per shape: shape (string), label (int16), split (train | test),
                                 points and normals (fixed_shape_tensor float32 [N, 3]); no normals
                                 column for a source without normals (ShapeNet-55, ScanObjectNN)
    <artefact>/source/           (synthetic source only) the generated ModelNet-layout tree

Schema metadata: class_names (JSON list; label i is class_names[i]), points_per_object, up_axis (0, 1, 2
for x, y, z), normalized (true: each shape centred on its centroid and scaled into the unit sphere).
Rows are grouped by split, then ordered by label and shape, ROW_GROUP_ROWS per Parquet row group: small
groups, so a training step reads the one group that holds each object it uses (io/row_groups.py) rather
than the whole split, and reading one split skips most of the other's row groups.
"""

from __future__ import annotations

from collections.abc import Iterator
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
# 0.8 MB of points and normals per row group at 2048 points (1.6 MB at ShapeNet-55's 8192): reading one object
# reads its group; 3,300 groups for ShapeNet-55's 52k objects keep the footer near a megabyte.
ROW_GROUP_ROWS = 16


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


def split_rows(objects_dir: Path, split: str) -> np.ndarray:
    """[M] int64 rows of objects.parquet (0-based over the file) that hold `split`, in file order; reads the
    split column only."""
    path = objects_path(objects_dir)
    if split not in SPLITS:
        raise ValueError(f"{path}: no split {split!r}; splits are {SPLITS}")
    return np.flatnonzero(pc.equal(pq.read_table(path, columns=["split"])["split"], split).to_numpy(zero_copy_only=False))


def split_labels(objects_dir: Path, split: str) -> np.ndarray:
    """[M] int16 labels of `split`'s objects in file order (the label column only)."""
    table = pq.read_table(objects_path(objects_dir), columns=["label", "split"], filters=pc.field("split") == split)
    return table["label"].to_numpy()


def iter_objects(objects_dir: Path, split: str, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`split`'s objects in file order, `batch_size` at a time: ([B, N, 3] float32 points, [B] int16 labels),
    read one row group at a time, so memory holds a row group and a batch, not the split."""
    parquet = pq.ParquetFile(objects_path(objects_dir))
    points, labels = [], []
    for group in range(parquet.metadata.num_row_groups):
        table = parquet.read_row_group(group, columns=["points", "label", "split"])
        table = table.filter(pc.equal(table["split"], split))
        if len(table):
            points.append(tensor_column_to_numpy(table["points"]))
            labels.append(table["label"].to_numpy())
        while sum(map(len, labels)) >= batch_size:
            yield _take_batch(points, labels, batch_size)
    if labels:
        yield _take_batch(points, labels, sum(map(len, labels)))


def _take_batch(points: list[np.ndarray], labels: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the first `size` objects off the buffered chunks (in place)."""
    all_points, all_labels = np.concatenate(points), np.concatenate(labels)
    points[:] = [all_points[size:]] if len(all_points) > size else []
    labels[:] = [all_labels[size:]] if len(all_labels) > size else []
    return all_points[:size], all_labels[:size]


def class_names(objects_dir: Path) -> list[str]:
    return read_metadata(objects_path(objects_dir))["class_names"]


def objects_metadata(objects_dir: Path) -> dict[str, object]:
    """Every metadata entry of the module docstring."""
    return read_metadata(objects_path(objects_dir))
