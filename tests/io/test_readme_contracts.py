"""Schema metadata is JSON in every artefact, and the plain-pyarrow read of a tensor column in docs/data.md (the
data contracts, moved there from the README) works as written (issue 16 item 13)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pix2point.io.arrow import read_metadata, with_metadata, write_table
from pix2point.io.features_table import features_schema
from pix2point.io.objects_table import OBJECTS_FILE, Objects, objects_table
from pix2point.io.views_table import METADATA_KEYS, views_schema

DATA_DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def raw_metadata(schema: pa.Schema) -> dict[str, bytes]:
    return {key.decode(): value for key, value in (schema.metadata or {}).items() if not key.startswith(b"ARROW:")}


def test_features2d_and_views2d_encode_the_teacher_the_same_way():
    features = features_schema((40, 8, 8), {"teacher": "efficientnet_lite0", "layer": "stage3", "stride": 8})
    views = views_schema(3, 16, 40, {key: "efficientnet_lite0" if key == "teacher" else 1 for key in METADATA_KEYS})
    assert raw_metadata(features)["teacher"] == raw_metadata(views)["teacher"] == b'"efficientnet_lite0"'
    for schema in (features, views):
        assert all(json.loads(value) is not None for value in raw_metadata(schema).values())


def test_metadata_round_trips_every_json_type_and_a_foreign_value_is_an_error_naming_file_and_key(tmp_path):
    values = {"name": "stage5", "count": 3, "scale": 0.5, "flag": False, "names": ["a", "b"], "nested": {"k": [1]}}
    write_table(with_metadata(pa.table({"x": [1]}), values), tmp_path / "ok.parquet")
    assert read_metadata(tmp_path / "ok.parquet") == values
    pq.write_table(pa.table({"x": [1]}).replace_schema_metadata({b"teacher": b"efficientnet_lite0"}), tmp_path / "old.parquet")
    with pytest.raises(ValueError, match=r"old.parquet: schema metadata 'teacher' is not JSON"):
        read_metadata(tmp_path / "old.parquet")


def test_the_data_contracts_tensor_column_block_reads_an_objects_artefact(tmp_path, capsys):
    points = np.random.default_rng(0).normal(size=(4, 32, 3)).astype(np.float32)
    objects = Objects(points, None, np.array([0, 1, 1, 0], np.int16), ["a_1", "b_1", "b_2", "a_2"])
    table = objects_table(objects, ["train"] * 4, ["chair", "lamp"], up_axis=2, normalized=True)
    write_table(table, tmp_path / OBJECTS_FILE)
    section = DATA_DOC.read_text().split("## Data contracts", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'pq.read_table("artefacts/objects/<key>/objects.parquet")' in code
    namespace: dict = {}
    exec(code.replace('"artefacts/objects/<key>/objects.parquet"', repr(str(tmp_path / OBJECTS_FILE))), namespace)
    read = namespace["points"]
    assert read.shape == (4, 32, 3) and read.dtype == np.float32
    stored = pq.read_table(tmp_path / OBJECTS_FILE)
    assert np.array_equal(read[0], points[objects.shapes.index(stored["shape"][0].as_py())])
    assert namespace["metadata"] == {"class_names": ["chair", "lamp"], "points_per_object": 32, "up_axis": 2, "normalized": True}
    assert capsys.readouterr().out.strip() == "(4, 32, 3) chair"
