"""PPKT's per-frame training samples, written by the `pairs` stage beside its pairs shards.

    <artefact>/samples/<scene>.parquet   one row, and one Parquet row group, per kept frame that sees a point

Columns (P = the points the frame sees, in ascending point_index order, as in the pairs shard):

    scene string, frame int32
    points int32                     P
    point_index list<int32>          [P] rows of the scenes artefact's point table
    xyz list<fixed_size_list<float32, 3>>   [P, 3] world coordinates, metres
    rgb list<fixed_size_list<uint8, 3>>     [P, 3] the scan's colours
    u, v list<int16>                 [P] integer color pixel (column, row) the point is seen at
    color_width, color_height int32  the color image's size, pixels
    features_row_group, features_row int32  where the frame's teacher map lies in features2d's
                                     features/<scene>.parquet: row group, and row within it

A training step reads one row group here and one row group of the features shard per frame, so it reads
only the frames it uses (`FrameReader`), never a whole scene. Plain pyarrow reads it:
`pq.ParquetFile(path).read_row_group(i)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pix2point.io.arrow import atomic_parquet_writer, tensor_column_to_numpy
from pix2point.io.features_table import MIRRORED_COLUMN, shard_path
from pix2point.io.row_groups import RowGroupReader

SAMPLES_DIR = "samples"
# Columns a training step needs; point_index is there for tracing a sample back to the scan.
TRAINING_COLUMNS = ("xyz", "rgb", "u", "v", "color_width", "color_height")

SAMPLES_SCHEMA = pa.schema([
    pa.field("scene", pa.string(), nullable=False),
    pa.field("frame", pa.int32(), nullable=False),
    pa.field("points", pa.int32(), nullable=False),
    pa.field("point_index", pa.list_(pa.int32()), nullable=False),
    pa.field("xyz", pa.list_(pa.list_(pa.float32(), 3)), nullable=False),
    pa.field("rgb", pa.list_(pa.list_(pa.uint8(), 3)), nullable=False),
    pa.field("u", pa.list_(pa.int16()), nullable=False),
    pa.field("v", pa.list_(pa.int16()), nullable=False),
    pa.field("color_width", pa.int32(), nullable=False),
    pa.field("color_height", pa.int32(), nullable=False),
    pa.field("features_row_group", pa.int32(), nullable=False),
    pa.field("features_row", pa.int32(), nullable=False),
])


@dataclass(frozen=True)
class FrameSample:
    """One PPKT training sample: a kept frame's visible points, their pixels and the teacher's map."""

    xyz: np.ndarray  # [P, 3] float32 world coordinates of the points the frame sees, metres
    rgb: np.ndarray  # [P, 3] uint8
    pixels: np.ndarray  # [P, 2] int (u, v) of each point in the color image
    image_size: tuple[int, int]  # (width, height) of the color image
    features: np.ndarray  # [C, h, w] float16 teacher features of the frame
    features_mirrored: np.ndarray | None = None  # [C, h, w] float16 teacher features of the mirrored image

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays a training step uses (the denominator of read amplification)."""
        maps = self.features.nbytes + (0 if self.features_mirrored is None else self.features_mirrored.nbytes)
        return self.xyz.nbytes + self.rgb.nbytes + self.pixels.nbytes + maps

    def arrays(self) -> dict[str, np.ndarray]:
        """The sample as named arrays, the form training/runtime/sample_stream.py carries (the mirrored map is not
        carried: the streamed sample is already the view the flip drew)."""
        return {"xyz": self.xyz, "rgb": self.rgb, "pixels": self.pixels, "features": self.features,
                "image_size": np.array(self.image_size, np.int64)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> FrameSample:
        width, height = arrays["image_size"].tolist()
        return cls(arrays["xyz"], arrays["rgb"], arrays["pixels"], (width, height), arrays["features"])


def samples_path(pairs_dir: Path, scene: str) -> Path:
    return pairs_dir / SAMPLES_DIR / f"{scene}.parquet"


def features_locations(features_dir: Path, scene: str) -> dict[int, tuple[int, int]]:
    """Frame id -> (row group, row within it) of its map in the scene's features shard."""
    parquet = pq.ParquetFile(shard_path(features_dir, scene))
    where = {}
    for group in range(parquet.metadata.num_row_groups):
        for row, frame in enumerate(parquet.read_row_group(group, columns=["frame"])["frame"].to_pylist()):
            where[frame] = (group, row)
    return where


class SceneSamplesWriter:
    """Writes one scene's samples file, a row group per frame, complete under its real name or not at all."""

    def __init__(self, pairs_dir: Path, scene: str, features_dir: Path):
        self.scene = scene
        self.path = samples_path(pairs_dir, scene)
        self._locations = features_locations(features_dir, scene)
        self._context = atomic_parquet_writer(self.path, SAMPLES_SCHEMA, use_dictionary=["scene"])

    def __enter__(self) -> SceneSamplesWriter:
        self._writer = self._context.__enter__()
        return self

    def __exit__(self, *error) -> None:
        self._context.__exit__(*error)

    def write(self, frame: int, point_index: np.ndarray, xyz: np.ndarray, rgb: np.ndarray, pixel: np.ndarray,
              color_size: tuple[int, int]) -> None:
        """Add one frame: [P] point rows, [P, 3] float32 xyz, [P, 3] uint8 rgb, [P, 2] (u, v) pixels; a frame
        seeing nothing is not written (it cannot be a training sample)."""
        if not len(point_index):
            return
        if frame not in self._locations:
            raise ValueError(f"frame {frame} of scene {self.scene!r} has no teacher map in its features shard")
        group, row = self._locations[frame]
        columns = {
            "scene": pa.array([self.scene]), "frame": pa.array([frame], pa.int32()),
            "points": pa.array([len(point_index)], pa.int32()),
            "point_index": _one_list(pa.array(point_index.astype(np.int32))),
            "xyz": _one_list(_vectors(xyz.astype(np.float32))), "rgb": _one_list(_vectors(rgb.astype(np.uint8))),
            "u": _one_list(pa.array(pixel[:, 0].astype(np.int16))), "v": _one_list(pa.array(pixel[:, 1].astype(np.int16))),
            "color_width": pa.array([color_size[0]], pa.int32()), "color_height": pa.array([color_size[1]], pa.int32()),
            "features_row_group": pa.array([group], pa.int32()), "features_row": pa.array([row], pa.int32()),
        }
        self._writer.write_table(pa.Table.from_pydict(columns, schema=SAMPLES_SCHEMA), row_group_size=1)


def _vectors(values: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _one_list(values: pa.Array) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), values)


@dataclass(frozen=True)
class SampleRef:
    """Where a frame's sample lies: its scene, frame id, samples row group and features row group and row."""

    scene: str
    frame: int
    row_group: int
    features_row_group: int
    features_row: int


def sample_refs(pairs_dir: Path, scenes: Sequence[str]) -> list[SampleRef]:
    """Every sample of `scenes`, scene by scene in frame order (reads only the small index columns)."""
    refs = []
    for scene in scenes:
        path = samples_path(pairs_dir, scene)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no samples file for scene {scene!r} (re-run `pairs`)")
        index = pq.read_table(path, columns=["frame", "features_row_group", "features_row"]).to_pydict()
        refs += [SampleRef(scene, frame, group, fgroup, frow) for group, (frame, fgroup, frow) in
                 enumerate(zip(index["frame"], index["features_row_group"], index["features_row"]))]
    return refs


class FrameReader:
    """Reads single samples by targeted row-group reads: per frame one samples row group and one features
    row group (io/row_groups.RowGroupReader: footers parsed once, in a bounded LRU, so memory does not grow
    with the dataset). `bytes_read` counts every byte read from storage, footers included."""

    def __init__(self, pairs_dir: Path, features_dir: Path, cached_footers: int = 128):
        self.pairs_dir, self.features_dir = pairs_dir, features_dir
        self._rows = RowGroupReader(cached_footers)

    @property
    def bytes_read(self) -> int:
        return self._rows.bytes_read

    def read(self, ref: SampleRef, mirrored: bool = False) -> FrameSample:
        """The sample `ref` points at. `mirrored`: its view under PPKT's 2D flip instead (SLidR
        utils/transforms.py FlipHorizontal): the teacher's map of the mirrored image (features2d's
        features_mirrored column) and the mirrored pixel columns u -> W - 1 - u; only that map is read."""
        row = self._rows.read_row_group(samples_path(self.pairs_dir, ref.scene), ref.row_group, list(TRAINING_COLUMNS))
        column = MIRRORED_COLUMN if mirrored else "features"
        maps = self._rows.read_row_group(shard_path(self.features_dir, ref.scene), ref.features_row_group, [column])
        width = row["color_width"][0].as_py()
        u = _list_values(row["u"], ()).astype(np.int64)
        return FrameSample(
            xyz=_list_values(row["xyz"], (3,)), rgb=_list_values(row["rgb"], (3,)),
            pixels=np.stack([width - 1 - u if mirrored else u, _list_values(row["v"], ()).astype(np.int64)], axis=1),
            image_size=(width, row["color_height"][0].as_py()),
            features=tensor_column_to_numpy(maps[column].slice(ref.features_row, 1))[0],
        )


def _list_values(column: pa.ChunkedArray, shape: tuple[int, ...]) -> np.ndarray:
    """The values of a one-row list column as [P, *shape] numpy."""
    values = column.combine_chunks().flatten()
    if shape:
        values = values.flatten()
    return values.to_numpy(zero_copy_only=False).reshape((-1, *shape))
