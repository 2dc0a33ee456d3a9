"""Artefact integrity (issue 15.3): the manifest's sizes and SHA-256 hashes against the files as they are."""

import hashlib
import logging

import pyarrow.fs as pafs
import pytest

from pix2point.cli import main
from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.pipeline import PipelineError, load_pipeline
from pix2point.engine.remote import RemoteArtefactStore
from pix2point.engine.runner import run_pipeline, stage_states


def run(toy, store=None, **options):
    store = store or ArtefactStore(toy.artefacts)
    return {o.stage: o.status for o in run_pipeline(load_pipeline(toy.pipeline), store, **options)}


def artefact_file(toy, stage, name):
    (path,) = toy.artefacts.glob(f"{stage}/*/{name}")
    return path


def status(toy, capsys, *options):
    assert main(["status", str(toy.pipeline), "--artefacts", str(toy.artefacts), *options]) == 0
    return capsys.readouterr().out


def test_the_manifest_records_each_files_size_and_sha256(toy):
    run(toy)
    store = ArtefactStore(toy.artefacts)
    (key,) = store.complete_keys("numbers")
    for entry in store.manifest("numbers", key)["files"]:
        data = (store.path("numbers", key) / entry["path"]).read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_truncated_file_is_reported_damaged_and_run_rebuilds_it_and_its_downstream(toy, capsys, caplog):
    run(toy)
    shard = artefact_file(toy, "numbers", "numbers.parquet")
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[: size // 2])
    key = shard.parent.name

    output = status(toy, capsys)
    assert "damaged" in output
    assert f"damaged: stage numbers, key {key}, file numbers.parquet: {size // 2} bytes, the manifest says {size}" in output
    states = stage_states(load_pipeline(toy.pipeline), ArtefactStore(toy.artefacts))
    assert {name: state for name, (_, state) in states.items()} == {"numbers": "damaged", "total": "cached"}

    with caplog.at_level(logging.WARNING, logger="pix2point"):
        assert run(toy) == {"numbers": "ran", "total": "ran"}
    assert f"stage numbers (key {key}): artefact damaged, rebuilding it and what uses it: numbers.parquet" in caplog.text
    assert "stage total" in caplog.text and "its input numbers was damaged and rebuilt" in caplog.text
    assert shard.stat().st_size == size
    assert run(toy) == {"numbers": "cached", "total": "cached"}
    assert "damaged: stage" not in status(toy, capsys)


def test_a_same_size_change_is_found_by_verify_only(toy, capsys):
    run(toy)
    total = artefact_file(toy, "total", "total.txt")
    total.write_text("99")  # was "10": same size, other content
    assert "damaged: stage" not in status(toy, capsys)
    output = status(toy, capsys, "--verify")
    assert f"damaged: stage total, key {total.parent.name}, file total.txt: content differs (SHA-256" in output


def test_only_refuses_a_damaged_input_and_names_the_file(toy):
    run(toy)
    artefact_file(toy, "numbers", "numbers.parquet").unlink()
    with pytest.raises(PipelineError, match=r"--only total: its input stage 'numbers' \(key \w+\) is damaged: "
                                            r"numbers.parquet: missing; run `pix2point run numbers`"):
        run(toy, only="total")


def test_an_object_store_artefact_is_checked_too_and_rebuilt(toy, s3_root, tmp_path):
    store = RemoteArtefactStore(s3_root, tmp_path / "mirror")
    assert run(toy, store) == {"numbers": "ran", "total": "ran"}
    (key,) = store.complete_keys("numbers")
    path = f"{store.base}/numbers/{key}/numbers.parquet"
    with store.filesystem.open_output_stream(path) as stream:
        stream.write(b"PAR1")
    (problem,) = store.damage("numbers", key)
    assert problem.startswith("numbers.parquet: 4 bytes, the manifest says")
    assert run(toy, store) == {"numbers": "ran", "total": "ran"}
    assert store.filesystem.get_file_info(path).type == pafs.FileType.File and not store.damage("numbers", key, True)
