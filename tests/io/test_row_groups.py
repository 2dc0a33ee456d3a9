"""Targeted row-group reads: a damaged file's Arrow error names the file, also after the trip through a Ray
Train worker failure (pickled) to the console's error line."""

from __future__ import annotations

import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pix2point.engine.failures import describe
from pix2point.io.row_groups import RowGroupReader


@pytest.fixture
def truncated(tmp_path):
    path = tmp_path / "samples.parquet"
    pq.write_table(pa.table({"n": list(range(100))}), path, row_group_size=10)
    path.write_bytes(path.read_bytes()[:-40])  # the footer is gone
    return path


@pytest.mark.parametrize("read", [lambda reader, path: reader.read_row_group(path, 0, ["n"]),
                                  lambda reader, path: reader.read_row(path, 3, ["n"]),
                                  lambda reader, path: reader.read_file(path)])
def test_a_damaged_file_is_named_in_the_error_line(truncated, read):
    with pytest.raises(pa.ArrowException) as raised:
        read(RowGroupReader(), truncated)
    assert describe(raised.value).endswith(f"; file: {truncated}")
    assert f"file: {truncated}" in describe(pickle.loads(pickle.dumps(raised.value)))  # as Ray ships it


def test_an_intact_file_reads_its_row_groups(tmp_path):
    path = tmp_path / "samples.parquet"
    pq.write_table(pa.table({"n": list(range(100))}), path, row_group_size=10)
    reader = RowGroupReader()
    assert reader.read_row(path, 37, ["n"]).column("n").to_pylist() == [37]
    assert reader.read_row_group(path, 2, ["n"]).column("n").to_pylist() == list(range(20, 30))
    assert 0 < reader.bytes_read < path.stat().st_size * 3
