"""Typed record tables: a list of frozen dataclass records <-> one Parquet file with a fixed Arrow schema.

Every result table (runs, history, trials, episodes) is written and read through these two functions, so a
table's contract is its record dataclass plus its schema, and nothing else:

- `schema` fixes the scalar and list columns: their names, Arrow types and order (the file's column order,
  whatever the dataclass's field order).
- `tensors` names the fields that hold one numpy array per record (a confusion matrix): each becomes a
  fixed_shape_tensor column after the schema's columns, in the order given, cast to the dtype given.
- `metadata` goes to the schema metadata, JSON-encoded (arrow.with_metadata).

A field of the dataclass that is neither in `schema` nor in `tensors` is not written (raises, so a new field
cannot be dropped silently); a column of the file that is not a field of the record raises on reading.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pix2point.io.arrow import tensor_column, tensor_column_to_numpy, with_metadata, write_table

Record = TypeVar("Record")


def records_table(records: Sequence[Any], schema: pa.Schema,
                  tensors: Mapping[str, np.dtype | type] | None = None) -> pa.Table:
    """Dataclass records -> Arrow table: `schema`'s columns, then one fixed_shape_tensor column per `tensors`
    entry (the records' arrays stacked to [N, *shape], cast to the entry's dtype).

    Raises ValueError naming the field for a dataclass field that has no column, and for tensors with no
    record to stack (a tensor column's shape comes from its records)."""
    tensors = dict(tensors or {})
    if records:
        _check_columns(type(records[0]), schema, tensors)
    rows = [{field: getattr(record, field) for field in schema.names} for record in records]
    table = pa.Table.from_pylist(rows, schema=schema)
    for name, dtype in tensors.items():
        if not records:
            raise ValueError(f"tensor column {name!r}: no record to take its shape from")
        table = table.append_column(name, tensor_column(np.stack([np.asarray(getattr(record, name), dtype)
                                                                  for record in records])))
    return table


def write_records(path: Path, records: Sequence[Any], schema: pa.Schema,
                  tensors: Mapping[str, np.dtype | type] | None = None, metadata: dict[str, Any] | None = None) -> None:
    """records_table(records, schema, tensors) with `metadata` (JSON-encoded) -> zstd Parquet at `path`."""
    table = records_table(records, schema, tensors)
    if metadata is not None:
        table = with_metadata(table, metadata)
    write_table(table, path)


def read_records(path: Path, record_type: type[Record], tensors: Sequence[str] = ()) -> list[Record]:
    """Parquet written by write_records -> one `record_type` per row; a `tensors` column gives each record its
    [*shape] numpy array. A dataclass field missing from the file takes its default (an older table).

    Raises FileNotFoundError naming the file; TypeError (from the dataclass) for a column with no field."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    table = pq.read_table(path)
    arrays = {name: tensor_column_to_numpy(table[name]) for name in tensors}
    rows = table.drop_columns(list(tensors)).to_pylist()
    return [record_type(**row, **{name: array[i] for name, array in arrays.items()}) for i, row in enumerate(rows)]


def _check_columns(record_type: type, schema: pa.Schema, tensors: Mapping[str, Any]) -> None:
    fields = {field.name for field in dataclasses.fields(record_type)}
    columns = set(schema.names) | set(tensors)
    if fields != columns:
        raise ValueError(f"{record_type.__name__}: fields without a column {sorted(fields - columns)}, "
                         f"columns without a field {sorted(columns - fields)}")
