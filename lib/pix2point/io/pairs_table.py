"""The `pairs` artefact: which scene point is seen at which color pixel of which kept frame.

    <artefact>/pairs/<scene>.parquet   rows (frame int32, point_index int32, u int16, v int16)

A row says: point `point_index` of the scene (its row in the scenes artefact's point table) is seen in
frame `frame` at integer pixel (u = column, v = row) of that frame's color image. Rows are sorted by
frame, then point_index; a point appears at most once per frame. A scene whose kept frames see
nothing still gets a shard, with no rows.

Schema metadata (every value JSON, as in every artefact): depth_tolerance and depth_tolerance_relative (the occlusion test:
|point depth - measured depth| <= depth_tolerance + depth_tolerance_relative * measured depth),
max_depth, depth_lookup (which depth pixel a point is compared with) and pixel_rounding (how a
continuous color coordinate becomes (u, v)), as pix2point.geometry.visibility states them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pix2point.io.arrow import read_metadata, with_metadata

PAIRS_DIR = "pairs"
# Readers load a scene's pairs whole; row groups of this size keep its column chunks a few MB each.
ROW_GROUP_SIZE = 1 << 20

NUMERIC_METADATA = ("depth_tolerance", "depth_tolerance_relative", "max_depth")

PAIRS_SCHEMA = pa.schema([
    pa.field("frame", pa.int32(), nullable=False),
    pa.field("point_index", pa.int32(), nullable=False),
    pa.field("u", pa.int16(), nullable=False),
    pa.field("v", pa.int16(), nullable=False),
])


@dataclass(frozen=True)
class ScenePairs:
    frame: np.ndarray  # [P] int32
    point_index: np.ndarray  # [P] int32
    pixel: np.ndarray  # [P, 2] int16, (u, v) = (column, row) in the color image

    def __len__(self) -> int:
        return len(self.frame)


def pairs_path(pairs_dir: Path, scene: str) -> Path:
    return pairs_dir / PAIRS_DIR / f"{scene}.parquet"


def pairs_scenes(pairs_dir: Path) -> list[str]:
    return sorted(path.stem for path in (pairs_dir / PAIRS_DIR).glob("*.parquet"))


def pairs_table(pairs: ScenePairs) -> pa.Table:
    """Arrow table of `pairs`; pixel coordinates beyond int16 are an error, not a silent wrap-around."""
    if len(pairs) and np.abs(pairs.pixel).max() > np.iinfo(np.int16).max:
        raise ValueError(f"pixel coordinate {np.abs(pairs.pixel).max()} does not fit the int16 u, v columns")
    return pa.Table.from_pydict(
        {
            "frame": pa.array(pairs.frame.astype(np.int32)),
            "point_index": pa.array(pairs.point_index.astype(np.int32)),
            "u": pa.array(pairs.pixel[:, 0].astype(np.int16)),
            "v": pa.array(pairs.pixel[:, 1].astype(np.int16)),
        },
        schema=PAIRS_SCHEMA,
    )


class ScenePairsWriter:
    """Streams one scene's shard: pairs arrive frame by frame and leave in row groups of ROW_GROUP_SIZE
    rows, so memory stays bounded however many frames a scene keeps.

    The shard is written under a temporary name and renamed when the block ends without error, so a
    shard that exists is whole; on an error the temporary file is removed. The temporary name does
    not end in .parquet, so pairs_scenes never lists it.
    """

    def __init__(self, pairs_dir: Path, scene: str, metadata: dict[str, Any]):
        self.path = pairs_path(pairs_dir, scene)
        self._temporary = self.path.with_name(f".{self.path.name}.tmp")
        self._schema = with_metadata(PAIRS_SCHEMA.empty_table(), metadata).schema
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> ScenePairsWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self._temporary, self._schema, compression="zstd")
        return self

    def write(self, pairs: ScenePairs) -> None:
        self._pending.append(pairs_table(pairs))
        self._pending_rows += len(pairs)
        if self._pending_rows >= ROW_GROUP_SIZE:
            self._flush(whole_row_groups_only=True)

    def __exit__(self, error_type, error, traceback) -> None:
        try:
            if error_type is None:
                self._flush(whole_row_groups_only=False)
        finally:
            self._writer.close()
            if error_type is None:
                os.replace(self._temporary, self.path)
            else:
                self._temporary.unlink(missing_ok=True)

    def _flush(self, whole_row_groups_only: bool) -> None:
        table = pa.concat_tables(self._pending) if self._pending else PAIRS_SCHEMA.empty_table()
        ready = len(table) // ROW_GROUP_SIZE * ROW_GROUP_SIZE if whole_row_groups_only else len(table)
        if ready:
            self._writer.write_table(table.slice(0, ready), row_group_size=ROW_GROUP_SIZE)
        self._pending, self._pending_rows = [table.slice(ready)], len(table) - ready


def read_scene_pairs(pairs_dir: Path, scene: str) -> ScenePairs:
    table = pq.read_table(pairs_path(pairs_dir, scene))
    return ScenePairs(
        frame=table["frame"].to_numpy(),
        point_index=table["point_index"].to_numpy(),
        pixel=np.stack([table["u"].to_numpy(), table["v"].to_numpy()], axis=1),
    )


def pairs_metadata(pairs_dir: Path, scene: str) -> dict[str, float | str]:
    """The shard's occlusion-test settings (floats) and rounding rules (text)."""
    raw = read_metadata(pairs_path(pairs_dir, scene))
    return {key: float(value) if key in NUMERIC_METADATA else value for key, value in raw.items()}
