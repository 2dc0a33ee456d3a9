"""Targeted Parquet reads for training samples: single row groups (or single rows) of a file, each file's
footer parsed once and kept in a bounded LRU, every byte read from storage counted.

A training step reads only the row groups that hold its samples, so what a worker holds does not grow with
the dataset: the artefacts it reads are written with small row groups for this (samples: one frame a group;
objects: OBJECT_ROW_GROUP_ROWS objects a group).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


class CountingFile(io.FileIO):
    """A read-only file that counts the bytes read from it, so readers can report what storage served."""

    def __init__(self, path: Path):
        super().__init__(path, "rb")
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        self.bytes_read += count or 0
        return count


class RowGroupReader:
    """Reads row groups, or one row, of Parquet files; `bytes_read` counts every byte read, footers included.
    Footers of the last `cached_footers` files stay parsed (an LRU: memory does not grow with the files)."""

    def __init__(self, cached_footers: int = 128):
        self.bytes_read = 0
        self._footer = functools.lru_cache(maxsize=cached_footers)(self._read_footer)

    def read_row_group(self, path: Path, group: int, columns: list[str]) -> pa.Table:
        """Row group `group` of `path`, only `columns`."""
        with naming(path), CountingFile(path) as handle:
            table = pq.ParquetFile(handle, metadata=self._footer(path)).read_row_group(group, columns=columns)
            self.bytes_read += handle.bytes_read
        return table

    def read_row(self, path: Path, row: int, columns: list[str]) -> pa.Table:
        """Row `row` (0-based over the whole file) of `path`: reads the one row group that holds it.
        Raises IndexError naming the file when the file has no such row."""
        starts = self._row_group_starts(path)
        if not 0 <= row < starts[-1]:
            raise IndexError(f"{path}: no row {row} (it has {starts[-1]})")
        group = int(np.searchsorted(starts, row, side="right")) - 1
        return self.read_row_group(path, group, columns).slice(row - int(starts[group]), 1)

    def read_file(self, path: Path, columns: list[str] | None = None) -> pa.Table:
        """The whole file (a sample that is a whole file, as a scene's points)."""
        with naming(path), CountingFile(path) as handle:
            table = pq.ParquetFile(handle, metadata=self._footer(path)).read(columns=columns)
            self.bytes_read += handle.bytes_read
        return table

    def _row_group_starts(self, path: Path) -> np.ndarray:
        """[groups + 1] first row of each row group of `path`, then its row count."""
        metadata = self._footer(path)
        counts = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])

    def _read_footer(self, path: Path) -> pq.FileMetaData:
        with naming(path), CountingFile(path) as handle:
            metadata = pq.ParquetFile(handle).metadata
            self.bytes_read += handle.bytes_read
        return metadata


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """Adds `file: <path>` to an Arrow error raised inside, which names no file ("Parquet magic bytes not found
    in footer"): a training worker that meets a damaged sample file then fails with the file in the console's
    error line (engine/failures.describe reads the note). OSErrors already carry their filename."""
    try:
        yield
    except pa.ArrowException as error:
        note = f"file: {path}"
        if str(path) not in str(error) and note not in getattr(error, "__notes__", ()):
            error.add_note(note)
        raise
