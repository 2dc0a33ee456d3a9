"""io/records.py: dataclass records <-> Parquet, in the schema's column order, tensors after."""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pix2point.io.arrow import read_metadata
from pix2point.io.records import read_records, write_records

SCHEMA = pa.schema([("name", pa.string()), ("count", pa.int32()), ("score", pa.float64()),
                    ("tags", pa.list_(pa.string()))])


@dataclass(frozen=True)
class Row:
    score: float | None
    name: str
    matrix: np.ndarray
    tags: list[str]
    count: int = 0


def test_round_trip_keeps_schema_order_types_tensors_and_metadata(tmp_path):
    rows = [Row(0.5, "a", np.eye(2, dtype=np.int32), ["x"], 3), Row(None, "b", np.ones((2, 2)), [])]
    path = tmp_path / "t.parquet"
    write_records(path, rows, SCHEMA, {"matrix": np.int64}, {"classes": ["p", "q"]})
    table = pq.read_table(path)
    assert table.column_names == ["name", "count", "score", "tags", "matrix"]
    assert table.schema.field("count").type == pa.int32()
    assert table["matrix"].type.value_type == pa.int64() and table["matrix"].type.shape == [2, 2]
    assert read_metadata(path) == {"classes": ["p", "q"]}
    back = read_records(path, Row, ["matrix"])
    assert [(r.name, r.count, r.score, r.tags) for r in back] == [("a", 3, 0.5, ["x"]), ("b", 0, None, [])]
    np.testing.assert_array_equal(back[1].matrix, np.ones((2, 2), np.int64))


def test_a_field_without_a_column_raises_naming_it(tmp_path):
    with pytest.raises(ValueError, match="matrix"):
        write_records(tmp_path / "t.parquet", [Row(0.5, "a", np.eye(2), [])], SCHEMA)


def test_a_missing_file_raises_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.parquet"):
        read_records(tmp_path / "absent.parquet", Row)
