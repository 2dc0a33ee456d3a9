"""scripts/rerun_stage.py: a stage re-run from an artefact's manifest into a new root, its tables diffed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import run_pipeline
from pix2point.io.arrow import tensor_column, tensor_column_to_numpy

REPO = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("rerun_stage", REPO / "scripts" / "rerun_stage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def objects_artefact(ray_runtime, tmp_path_factory) -> Path:
    """A real `objects` artefact made by the engine on the smoke profile (no training: seconds)."""
    pipeline = load_pipeline(REPO / "pipeline.yaml", "smoke")
    (outcome,) = run_pipeline(pipeline, ArtefactStore(tmp_path_factory.mktemp("root")), targets=["objects"])
    return outcome.path


def test_an_unchanged_artefact_reruns_identical(objects_artefact, tmp_path, capsys):
    assert load_script().main([str(objects_artefact), str(tmp_path / "new")]) == 0
    assert "identical tables and weights" in capsys.readouterr().out
    rerun = tmp_path / "new" / "objects" / objects_artefact.name
    assert (rerun / "_manifest.json").is_file() and (rerun / "objects.parquet").is_file()


def test_a_changed_cell_is_reported_and_fails(objects_artefact, tmp_path, capsys):
    # A copy of the artefact whose root is a copy too, with one coordinate of one object nudged.
    published = tmp_path / "published" / "objects" / objects_artefact.name
    published.parent.mkdir(parents=True)
    for path in objects_artefact.rglob("*"):
        if path.is_file():
            target = published / path.relative_to(objects_artefact)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    table = pq.read_table(published / "objects.parquet")
    points = tensor_column_to_numpy(table["points"]).copy()
    points[3, 0, 0] += np.float32(1e-3)
    column = table.schema.get_field_index("points")
    pq.write_table(table.set_column(column, table.schema.field(column), tensor_column(points)).replace_schema_metadata(
        table.schema.metadata), published / "objects.parquet")

    assert load_script().main([str(published), str(tmp_path / "new")]) == 1
    out = capsys.readouterr().out
    assert "objects.parquet: column 'points': 1 of " in out and "first at row 3" in out
    assert "1 difference(s)" in out


def test_a_directory_without_manifest_is_a_clear_error(tmp_path, capsys):
    assert load_script().main([str(tmp_path), str(tmp_path / "new")]) == 2
    assert f"{tmp_path}/_manifest.json: no manifest" in capsys.readouterr().err
