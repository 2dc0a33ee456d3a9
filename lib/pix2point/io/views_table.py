"""The `views2d` artefact: per object, a frozen 2D teacher's features and saliency at each point, seen in 3
orthographic depth views (I2P-MAE's 2D targets and 2D-guided masking weights).

    <artefact>/views.parquet   one row per object, in the order of the objects artefact's objects.parquet
                               (both splits), columns:
        shape     string    the object's `shape` in objects.parquet
        split     string    train | test, as in objects.parquet
        features  fixed_shape_tensor float16 [V, N, C]  view v's teacher feature map, upsampled to the image
                            size, at point n's pixel
        saliency  fixed_shape_tensor float32 [V, N]     view v's saliency map, a distribution over its cells
                            (models/view_teachers.py), upsampled like the features (clipped to [0, 1]),
                            at point n's pixel
        pixels    fixed_shape_tensor int16 [V, N, 2]    (u, v) = (column, row) of point n in view v's image

V = 3 views, N = the objects' points_per_object, C = the teacher layer's channels. View v permutes the
point's axes by views[v] (xyz, zxy, yzx): for q = point[views[v]], q[0] picks the image row v, q[1] the
column u and q[2] is the depth splatted into the image (pix2point.geometry.orthographic gives the
projection). Every point has a pixel inside the image: 0 <= u, v < image_size.

Schema metadata (JSON values): teacher, layer, channels, image_size (square side), splat (footprint
side in pixels), views (the 3 axis permutations), saliency ({"method", "description"}), mean, std (the
teacher's input normalisation the depth images got), interpolation (how the feature map was upsampled).
Rows of one split are contiguous (objects.parquet groups them) and a row group holds at most
VIEWS_ROW_GROUP_ROWS (4) objects of one split, so reading one split skips the other's row groups and a
training step reads only the groups of the objects it uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pix2point.io.arrow import (
    atomic_parquet_writer,
    read_metadata,
    tensor_column,
    tensor_column_to_numpy,
    with_metadata,
)
from pix2point.io.objects_table import SPLITS

VIEWS_FILE = "views.parquet"
# An object's views are 20x its points (240 kB at 1024 points, 40 channels): a training step reads one group
# per object, and 16-object groups made I2P-MAE's reads 19 ms an object (1.4 ms at 1, 3.8 ms at 4, measured on
# a default-profile views.parquet). 4 keeps the footer near 130 bytes an object (7 MB at ShapeNet-55's 52k).
VIEWS_ROW_GROUP_ROWS = 4
METADATA_KEYS = ("teacher", "layer", "channels", "image_size", "splat", "views", "saliency", "mean", "std",
                 "interpolation")


class Views(NamedTuple):
    features: np.ndarray  # [M, V, N, C] float16
    saliency: np.ndarray  # [M, V, N] float32 in [0, 1], each view's map a distribution over its cells
    pixels: np.ndarray  # [M, V, N, 2] int16 (u, v) = (column, row)
    shapes: list[str]


def views_path(views_dir: Path) -> Path:
    return views_dir / VIEWS_FILE


def views_schema(views: int, points: int, channels: int, metadata: dict[str, Any]) -> pa.Schema:
    """Schema of views.parquet for `views` views of `points` points with `channels` feature channels;
    `metadata` must hold exactly the module docstring's keys."""
    if set(metadata) != set(METADATA_KEYS):
        raise ValueError(f"views metadata keys {sorted(metadata)} differ from {sorted(METADATA_KEYS)}")
    schema = pa.schema([
        pa.field("shape", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("features", pa.fixed_shape_tensor(pa.float16(), (views, points, channels)), nullable=False),
        pa.field("saliency", pa.fixed_shape_tensor(pa.float32(), (views, points)), nullable=False),
        pa.field("pixels", pa.fixed_shape_tensor(pa.int16(), (views, points, 2)), nullable=False),
    ])
    return with_metadata(schema.empty_table(), metadata).schema


class ViewsWriter:
    """Writes a views table (views_path(dir), or a part of one) one chunk of objects at a time, in row groups
    of at most VIEWS_ROW_GROUP_ROWS objects of one split, so the whole table never has to be in memory. The file
    appears under its real name only when the block ends without error (pix2point.io.arrow.atomic_parquet_writer)."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self._context = atomic_parquet_writer(
            self.path, schema, use_dictionary=["shape", "split"],
            # As in features2d: float features compress better split into byte streams, and never repeat.
            use_byte_stream_split=["features.list.element", "saliency.list.element"],
        )
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> ViewsWriter:
        self._writer = self._context.__enter__()
        return self

    def __exit__(self, *error: Any) -> bool | None:
        return self._context.__exit__(*error)

    def write(self, views: Views, splits: Sequence[str]) -> None:
        """Append `views` (one split only: a row group never mixes splits)."""
        if len(set(splits)) != 1 or len(splits) != len(views.shapes):
            raise ValueError(f"a chunk of views needs one split for all {len(views.shapes)} objects, got {sorted(set(splits))}")
        table = pa.Table.from_arrays(
            [
                pa.array(views.shapes, pa.string()),
                pa.array(list(splits), pa.string()),
                tensor_column(np.asarray(views.features, np.float16)),
                tensor_column(np.asarray(views.saliency, np.float32)),
                tensor_column(np.asarray(views.pixels, np.int16)),
            ],
            schema=self.schema,
        )
        self.append(table)

    def append(self, table: pa.Table) -> None:
        """Append rows already in this schema (a part written by another ViewsWriter), VIEWS_ROW_GROUP_ROWS a
        row group: a training step reads the group of each object it uses (io/row_groups.py)."""
        self._writer.write_table(table, row_group_size=VIEWS_ROW_GROUP_ROWS)


def read_views(views_dir: Path, split: str | None = None) -> Views:
    """All objects' views (split None) or one split's, in the objects artefact's row order."""
    path = views_path(views_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no views table (is {views_dir} a views2d artefact?)")
    if split is not None and split not in SPLITS:
        raise ValueError(f"{path}: no split {split!r}; splits are {SPLITS}")
    table = pq.read_table(path, filters=None if split is None else pc.field("split") == split)
    return Views(
        features=tensor_column_to_numpy(table["features"]),
        saliency=tensor_column_to_numpy(table["saliency"]),
        pixels=tensor_column_to_numpy(table["pixels"]),
        shapes=table["shape"].to_pylist(),
    )


def views_metadata(views_dir: Path) -> dict[str, Any]:
    """Every metadata entry of the module docstring."""
    return read_metadata(views_path(views_dir))
