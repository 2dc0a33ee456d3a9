"""Conversions between numpy arrays and the Arrow column types of pix2point's Parquet contracts."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def fixed_list_column(values: np.ndarray) -> pa.FixedSizeListArray:
    """[N, K] array -> fixed_size_list<K> column, so a row holds one small vector (xyz, pose, intrinsics)."""
    values = np.ascontiguousarray(values)
    width = int(np.prod(values.shape[1:]))
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), width)


def fixed_list_to_numpy(column: pa.ChunkedArray | pa.Array, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of fixed_list_column: returns [N, *shape]."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape((len(column), *shape))


def tensor_column(values: np.ndarray) -> pa.ExtensionArray:
    """[N, *shape] array -> Arrow fixed_shape_tensor column (shape kept in the type, readable by plain pyarrow)."""
    return pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(values))


def tensor_column_to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.to_numpy_ndarray()


def with_metadata(table: pa.Table, metadata: dict[str, Any]) -> pa.Table:
    """Attach metadata to the schema, every value JSON-encoded, strings included (`"efficientnet_lite0"`): one
    rule for every artefact, so any reader decodes every key the same way (json.loads; read_metadata does)."""
    encoded = {key.encode(): json.dumps(value).encode() for key, value in metadata.items()}
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **encoded})


def read_metadata(path: Path | str) -> dict[str, Any]:
    """Schema metadata of a Parquet file, every value decoded from JSON (Arrow's own ARROW:schema entry left out).

    Raises ValueError naming the file and key for a value that is not JSON (a file not written by with_metadata)."""
    decoded = {}
    for key, value in (pq.read_schema(path).metadata or {}).items():
        if key.startswith(b"ARROW:"):
            continue
        try:
            decoded[key.decode()] = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: schema metadata {key.decode()!r} is not JSON ({value[:40]!r}); every "
                             f"value is JSON-encoded: rebuild the artefact with this version") from error
    return decoded


def write_table(table: pa.Table, path: Path, row_group_size: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size, compression="zstd")


@contextmanager
def atomic_parquet_writer(path: Path, schema: pa.Schema, **options: Any) -> Iterator[pq.ParquetWriter]:
    """A ParquetWriter on a hidden temporary name beside `path`, renamed to `path` when the block ends
    without error and deleted when it raises, so a file under its real name is always complete.
    `options` go to pq.ParquetWriter (zstd compression unless given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    writer = pq.ParquetWriter(temporary, schema, **{"compression": "zstd", **options})
    try:
        yield writer
    except BaseException:
        writer.close()
        temporary.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(temporary, path)
