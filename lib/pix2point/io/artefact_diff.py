"""Bit-for-bit comparison of two artefacts of one stage: every Parquet table and every saved state dict.

Tables are equal when their schemas (metadata included) and every cell match bit for bit, except the
columns in `MEASUREMENT_COLUMNS` (wall time, memory, placement, bytes read from storage), which measure the machine and are
skipped. Weights (`*.pt`) are equal when both hold the same tensor names with bit-identical values.
Other files (reports, plots, manifests) are derived from these or hold timings, and are not compared.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import torch

# Table columns that measure the machine or say where a run was placed (trials.parquet's trainer and node:
# how many runs trained at once follows the CPUs free at the time), not the training: free to differ between
# two runs. loss.parquet's bytes_read counts Parquet footers too, which each sample reader reads once in its
# life: a resumed run opens new readers (its first step reads them again), so the count follows how the
# run was executed. sample_bytes, the bytes of the samples themselves, is compared.
MEASUREMENT_COLUMNS = frozenset({"seconds", "worker_peak_rss_mb", "started_at", "finished_at",
                                 "data_wait_s", "step_s", "data_wait", "trainer", "node", "bytes_read"})


@dataclass(frozen=True)
class Difference:
    file: str  # relative to the artefact
    what: str  # one line for people

    def __str__(self) -> str:
        return f"{self.file}: {self.what}"


def compared_files(artefact: Path) -> list[str]:
    """Relative paths of the tables and weights of an artefact, sorted."""
    return sorted(str(path.relative_to(artefact)) for pattern in ("*.parquet", "*.pt")
                  for path in artefact.rglob(pattern) if not path.name.startswith("."))


def diff_artefacts(expected: Path, actual: Path) -> list[Difference]:
    """Every difference of `actual`'s tables and weights from `expected`'s; [] when they match."""
    expected_files, actual_files = compared_files(expected), compared_files(actual)
    differences = [Difference(name, "missing from the rerun") for name in expected_files if name not in actual_files]
    differences += [Difference(name, "only in the rerun") for name in actual_files if name not in expected_files]
    for name in expected_files:
        if name in actual_files:
            compare = diff_tables if name.endswith(".parquet") else diff_weights
            differences += [Difference(name, what) for what in compare(expected / name, actual / name)]
    return differences


def diff_tables(expected: Path, actual: Path) -> Iterator[str]:
    """Schema, row-count and per-column differences of two Parquet files."""
    left, right = pq.read_table(expected), pq.read_table(actual)
    if left.schema.metadata != right.schema.metadata:
        yield f"schema metadata differs: {_short(left.schema.metadata)} vs {_short(right.schema.metadata)}"
    if left.column_names != right.column_names:
        yield f"columns differ: {left.column_names} vs {right.column_names}"
    if left.num_rows != right.num_rows:
        yield f"{left.num_rows} rows vs {right.num_rows}"
        return
    for name in left.column_names:
        if name in MEASUREMENT_COLUMNS or name not in right.column_names:
            continue
        if left.schema.field(name).type != right.schema.field(name).type:
            yield f"column {name!r}: type {left.schema.field(name).type} vs {right.schema.field(name).type}"
            continue
        yield from _diff_column(name, left.column(name).to_pylist(), right.column(name).to_pylist())


def diff_weights(expected: Path, actual: Path) -> Iterator[str]:
    left, right = (torch.load(path, map_location="cpu", weights_only=True) for path in (expected, actual))
    if not (isinstance(left, dict) and isinstance(right, dict)):
        if expected.read_bytes() != actual.read_bytes():
            yield "file bytes differ (not a state dict)"
        return
    if left.keys() != right.keys():
        yield f"tensor names differ: {sorted(left.keys() ^ right.keys())[:5]}"
    for name in left.keys() & right.keys():
        a, b = left[name], right[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            yield f"tensor {name!r}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"
        elif not torch.equal(_bytes(a), _bytes(b)):
            changed = (a != b).sum().item()
            gap = (a.double() - b.double()).abs().max().item() if a.is_floating_point() else math.nan
            yield f"tensor {name!r}: {changed} of {a.numel()} values differ (max |diff| {gap:.3g})"


def _bytes(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(-1).contiguous().view(torch.uint8)


def _diff_column(name: str, left: list, right: list) -> Iterator[str]:
    rows = [row for row, (a, b) in enumerate(zip(left, right)) if not _same(a, b)]
    if not rows:
        return
    first = rows[0]
    gaps = [abs(left[row] - right[row]) for row in rows
            if isinstance(left[row], float) and isinstance(right[row], float)]
    gap = f"; max |diff| {max(gaps):.3g}" if gaps else ""
    yield (f"column {name!r}: {len(rows)} of {len(left)} rows differ; first at row {first}: "
           f"{_short(left[first])} vs {_short(right[first])}{gap}")


def _same(a: object, b: object) -> bool:
    """Bit-for-bit for floats (NaN equals NaN, 0.0 differs from -0.0); recursive for lists and dicts."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    return type(a) is type(b) and a == b


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
