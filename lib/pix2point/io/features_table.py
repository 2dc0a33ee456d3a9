"""The `features2d` artefact: frozen-teacher feature maps of the kept frames, one Parquet shard per scene.

    <artefact>/features/<scene>.parquet   columns scene, frame, features (fixed_shape_tensor float16 [C, H, W])

Schema metadata: teacher, layer, stride, channels, input_width, input_height (the size the color image
was resized to before the teacher), mean, std (the teacher's input normalisation), frame_step.
A color pixel (u, v) of a W x H color image lies at feature cell
(u * input_width / W / stride, v * input_height / H / stride).

Shards are written by FeatureShardWriter: row group by row group, under a temporary name until complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pix2point.io.arrow import read_metadata, tensor_column, tensor_column_to_numpy, with_metadata

FEATURES_DIR = "features"


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
    """Teacher, layer, stride, channels, input size and normalisation, decoded from JSON where needed."""
    raw = read_metadata(shard_path(features_dir, shard_scenes(features_dir)[0]))
    return {key: _maybe_json(value) for key, value in raw.items()}


def read_scene_features(features_dir: Path, scene: str) -> tuple[np.ndarray, np.ndarray]:
    """([F] frame ids, [F, C, H, W] float16 features) of one scene."""
    table = pq.read_table(shard_path(features_dir, scene), columns=["frame", "features"])
    return table["frame"].to_numpy(), tensor_column_to_numpy(table["features"])


def _maybe_json(value: str) -> object:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def features_schema(shape: tuple[int, int, int], metadata: dict[str, object]) -> pa.Schema:
    """Schema of a shard whose feature maps are [C, H, W] = `shape`, with the module docstring's metadata."""
    schema = pa.schema([
        pa.field("scene", pa.string(), nullable=False),
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("features", pa.fixed_shape_tensor(pa.float16(), shape), nullable=False),
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
        self._frames: list[np.ndarray] = []
        self._features: list[np.ndarray] = []
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> FeatureShardWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Feature values never repeat, so a dictionary attempt on them only costs time (4x the write); split
        # into byte streams, their exponent bytes compress (to about 85 % with zstd, against 95 % without).
        self._writer = pq.ParquetWriter(
            self.temporary_path, self.schema, compression="zstd",
            use_dictionary=["scene"], use_byte_stream_split=["features.list.element"],
        )
        return self

    def write(self, frames: np.ndarray, features: np.ndarray) -> None:
        """Add [N] frame ids and their [N, C, H, W] feature maps (converted to float16)."""
        self._frames.append(np.asarray(frames, np.int32))
        self._features.append(np.asarray(features, np.float16))
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
        frames, features = np.concatenate(self._frames), np.concatenate(self._features)
        self._frames, self._features = [frames[rows:]], [features[rows:]]
        table = pa.Table.from_arrays(
            [pa.array([self.scene] * rows, pa.string()), pa.array(frames[:rows]), tensor_column(features[:rows])],
            schema=self.schema,
        )
        self._writer.write_table(table, row_group_size=rows)
