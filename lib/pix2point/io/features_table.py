"""The `features2d` artefact: frozen-teacher feature maps of the kept frames, one Parquet shard per scene.

    <artefact>/features/<scene>.parquet   columns scene, frame, features (fixed_shape_tensor float16 [C, H, W])
                                          and, when `mirrored` is true, features_mirrored (the same shape)

`features_mirrored` is the teacher's map of the horizontally mirrored image (for PPKT's 2D flip, SLidR
utils/transforms.py FlipHorizontal, which flips the image before the teacher runs): color column u of the
image is column W - 1 - u of the mirrored one.

Schema metadata: teacher, layer, stride, channels, input_width, input_height (the size the color image
was resized to before the teacher), mean, std (the teacher's input normalisation), frame_step, mirrored.
A color pixel (u, v) of a W x H color image lies at feature cell
(u * input_width / W / stride, v * input_height / H / stride).

Shards are written by FeatureShardWriter: row group by row group, under a temporary name until complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pix2point.io.arrow import read_metadata, tensor_column, tensor_column_to_numpy, with_metadata

FEATURES_DIR = "features"
MIRRORED_COLUMN = "features_mirrored"


def shard_path(features_dir: Path, scene: str) -> Path:
    return features_dir / FEATURES_DIR / f"{scene}.parquet"


def shard_scenes(features_dir: Path) -> list[str]:
    return sorted(path.stem for path in (features_dir / FEATURES_DIR).glob("*.parquet"))


def kept_frames(features_dir: Path) -> dict[str, list[int]]:
    """Scene -> the frame ids that have teacher features (the frames downstream stages use)."""
    return {
        scene: pq.read_table(shard_path(features_dir, scene), columns=["frame"])["frame"].to_pylist()
        for scene in shard_scenes(features_dir)
    }


def feature_metadata(features_dir: Path) -> dict[str, object]:
    """Teacher, layer, stride, channels, input size and normalisation."""
    return read_metadata(shard_path(features_dir, shard_scenes(features_dir)[0]))


def read_scene_features(features_dir: Path, scene: str) -> tuple[np.ndarray, np.ndarray]:
    """([F] frame ids, [F, C, H, W] float16 features) of one scene."""
    table = pq.read_table(shard_path(features_dir, scene), columns=["frame", "features"])
    return table["frame"].to_numpy(), tensor_column_to_numpy(table["features"])


def read_scene_mirrored_features(features_dir: Path, scene: str) -> np.ndarray:
    """[F, C, H, W] float16 teacher maps of one scene's mirrored images, rows as in read_scene_features.

    Raises ValueError naming the shard when the artefact was built without `mirrored: true`."""
    path = shard_path(features_dir, scene)
    if MIRRORED_COLUMN not in pq.read_schema(path).names:
        raise ValueError(f"{path} has no {MIRRORED_COLUMN!r} column: run features2d with mirrored: true")
    return tensor_column_to_numpy(pq.read_table(path, columns=[MIRRORED_COLUMN])[MIRRORED_COLUMN])


def features_schema(shape: tuple[int, int, int], metadata: dict[str, object], mirrored: bool = False) -> pa.Schema:
    """Schema of a shard whose feature maps are [C, H, W] = `shape`, with the module docstring's metadata;
    `mirrored` adds the features_mirrored column."""
    tensor = pa.fixed_shape_tensor(pa.float16(), shape)
    maps = ["features", MIRRORED_COLUMN] if mirrored else ["features"]
    schema = pa.schema([
        pa.field("scene", pa.string(), nullable=False),
        pa.field("frame", pa.int32(), nullable=False),
        *(pa.field(name, tensor, nullable=False) for name in maps),
    ])
    return with_metadata(schema.empty_table(), metadata).schema


class FeatureShardWriter:
    """Writes one scene's shard, `row_group_size` frames per Parquet row group, so a shard never has to fit in
    memory whole. It writes to a temporary name and renames on a clean exit (and deletes it on an error), so
    a shard under its real name is always complete."""

    def __init__(self, features_dir: Path, scene: str, schema: pa.Schema, row_group_size: int) -> None:
        self.scene = scene
        self.schema = schema
        self.row_group_size = row_group_size
        self.path = shard_path(features_dir, scene)
        self.temporary_path = self.path.with_name(f".{self.path.name}.partial")
        self.map_columns = schema.names[2:]  # features, and features_mirrored when the schema has it
        self._frames: list[np.ndarray] = []
        self._maps: list[list[np.ndarray]] = [[] for _ in self.map_columns]
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> FeatureShardWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Feature values never repeat, so a dictionary attempt on them only costs time (4x the write); split
        # into byte streams, their exponent bytes compress (to about 85 % with zstd, against 95 % without).
        self._writer = pq.ParquetWriter(
            self.temporary_path, self.schema, compression="zstd",
            use_dictionary=["scene"], use_byte_stream_split=[f"{name}.list.element" for name in self.map_columns],
        )
        return self

    def write(self, frames: np.ndarray, *maps: np.ndarray) -> None:
        """Add [N] frame ids and their [N, C, H, W] feature maps (converted to float16), one array per map
        column of the schema (features, then features_mirrored when there is one)."""
        if len(maps) != len(self.map_columns):
            raise ValueError(f"shard {self.path} has map columns {self.map_columns}, got {len(maps)} arrays")
        self._frames.append(np.asarray(frames, np.int32))
        for buffer, values in zip(self._maps, maps):
            buffer.append(np.asarray(values, np.float16))
        while self._buffered_rows() >= self.row_group_size:
            self._write_row_group(self.row_group_size)

    def __exit__(self, error_type: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        assert self._writer is not None
        if error_type is None and self._buffered_rows():
            self._write_row_group(self._buffered_rows())
        self._writer.close()
        if error_type is None:
            os.replace(self.temporary_path, self.path)
        else:
            self.temporary_path.unlink(missing_ok=True)

    def _buffered_rows(self) -> int:
        return sum(len(frames) for frames in self._frames)

    def _write_row_group(self, rows: int) -> None:
        frames = np.concatenate(self._frames)
        maps = [np.concatenate(buffer) for buffer in self._maps]
        self._frames, self._maps = [frames[rows:]], [[values[rows:]] for values in maps]
        table = pa.Table.from_arrays(
            [pa.array([self.scene] * rows, pa.string()), pa.array(frames[:rows]),
             *(tensor_column(values[:rows]) for values in maps)],
            schema=self.schema,
        )
        self._writer.write_table(table, row_group_size=rows)
