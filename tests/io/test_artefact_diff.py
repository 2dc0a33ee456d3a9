"""artefact_diff: bit-for-bit table and weight comparison, timing columns aside."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from pix2point.io.artefact_diff import diff_artefacts


def write(directory, loss, seconds, weight, metadata=b"a"):
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table({"step": [1, 2], "loss": loss, "seconds": seconds}).replace_schema_metadata({b"k": metadata})
    pq.write_table(table, directory / "loss.parquet")
    torch.save({"w": torch.tensor(weight)}, directory / "backbone.pt")


def test_equal_tables_and_weights_match_whatever_the_timings(tmp_path):
    write(tmp_path / "a", [1.0, float("nan")], [0.1, 0.2], [1.0, 2.0])
    write(tmp_path / "b", [1.0, float("nan")], [9.0, 9.5], [1.0, 2.0])
    assert diff_artefacts(tmp_path / "a", tmp_path / "b") == []


def test_every_kind_of_difference_is_named(tmp_path):
    write(tmp_path / "a", [1.0, 2.0], [0.1, 0.2], [1.0, 2.0])
    write(tmp_path / "b", [1.0, 2.0000001], [0.1, 0.2], [1.0, -2.0], metadata=b"b")
    (tmp_path / "b" / "extra.parquet").write_bytes((tmp_path / "b" / "loss.parquet").read_bytes())
    found = [str(difference) for difference in diff_artefacts(tmp_path / "a", tmp_path / "b")]
    assert "extra.parquet: only in the rerun" in found
    assert any(text.startswith("loss.parquet: schema metadata differs") for text in found)
    assert any(text.startswith("loss.parquet: column 'loss': 1 of 2 rows differ; first at row 1: 2.0 vs 2.0000001")
               for text in found)
    assert "backbone.pt: tensor 'w': 1 of 2 values differ (max |diff| 4)" in found
    assert not any("seconds" in text for text in found)


def test_negative_zero_is_not_zero_and_a_missing_file_is_reported(tmp_path):
    write(tmp_path / "a", [0.0, 1.0], [0.1, 0.2], [0.0])
    write(tmp_path / "b", [-0.0, 1.0], [0.1, 0.2], [0.0])
    (tmp_path / "b" / "backbone.pt").unlink()
    found = [str(difference) for difference in diff_artefacts(tmp_path / "a", tmp_path / "b")]
    assert found == ["backbone.pt: missing from the rerun",
                     "loss.parquet: column 'loss': 1 of 2 rows differ; first at row 0: 0.0 vs -0.0; max |diff| 0"]
