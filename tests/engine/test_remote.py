"""An s3:// artefact root, against a real S3 protocol server on loopback (moto's server mode)."""

import signal
import subprocess
import time

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from pix2point.engine.artefacts import MANIFEST
from pix2point.engine.failures import StageFailed
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.remote import RemoteArtefactStore
from pix2point.engine.runner import run_pipeline, stage_states
from pix2point.engine.stores import open_store


class RecordingHandler(pafs.FileSystemHandler):
    """Passes every call to the real S3 filesystem, noting the order files are written in; can fail the
    upload of one file name, as a crash at that moment would."""

    def __init__(self, filesystem: pafs.FileSystem, fail_on: str | None = None):
        self.filesystem = filesystem
        self.fail_on = fail_on
        self.written: list[str] = []

    def open_output_stream(self, path, metadata):
        if self.fail_on and path.endswith("/" + self.fail_on):
            raise OSError(f"upload of {path} interrupted")
        self.written.append(path)
        return self.filesystem.open_output_stream(path, metadata=metadata)

    def get_type_name(self):
        return "recording-s3"

    def normalize_path(self, path):
        return self.filesystem.normalize_path(path)

    def get_file_info(self, paths):
        return self.filesystem.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self.filesystem.get_file_info(selector)

    def create_dir(self, path, recursive):
        self.filesystem.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self.filesystem.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self.filesystem.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        raise OSError("not used by the engine")

    def delete_file(self, path):
        self.filesystem.delete_file(path)

    def move(self, src, dest):
        self.filesystem.move(src, dest)

    def copy_file(self, src, dest):
        self.filesystem.copy_file(src, dest)

    def open_input_stream(self, path):
        return self.filesystem.open_input_stream(path)

    def open_input_file(self, path):
        return self.filesystem.open_input_file(path)

    def open_append_stream(self, path, metadata):
        return self.filesystem.open_append_stream(path, metadata=metadata)


def run(toy, store, *overrides, **options):
    pipeline = load_pipeline(toy.pipeline, overrides=list(overrides))
    return {o.stage: o.status for o in run_pipeline(pipeline, store, **options)}


def objects(s3_root: str, stage: str) -> list[str]:
    """Object names under `<root>/<stage>/`, relative to it."""
    store = open_store(s3_root)
    filesystem, base = store.filesystem, f"{store.base}/{stage}"
    listing = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    return sorted(info.path[len(base) + 1:] for info in listing if info.type == pafs.FileType.File)


def test_artefacts_land_in_the_bucket_and_a_second_run_from_another_machine_is_cached(toy, s3_root, tmp_path):
    store = open_store(s3_root, tmp_path / "cache-a")
    assert isinstance(store, RemoteArtefactStore)
    assert run(toy, store) == {"numbers": "ran", "total": "ran"}
    (key,) = store.complete_keys("numbers")
    assert objects(s3_root, "numbers") == [f"{key}/{MANIFEST}", f"{key}/config.yaml", f"{key}/numbers.parquet"]
    assert pq.read_table(f"{store.base}/numbers/{key}/numbers.parquet", filesystem=store.filesystem)["n"].to_pylist() == [0, 1, 2, 3, 4]
    assert store.manifest("total", store.complete_keys("total")[0])["metrics"] == {"total": 10}

    # A fresh local mirror stands for another machine: it sees the bucket's artefacts as cached ...
    elsewhere = open_store(s3_root, tmp_path / "cache-b")
    assert run(toy, elsewhere) == {"numbers": "cached", "total": "cached"}
    assert {name: state for name, (_, state) in stage_states(load_pipeline(toy.pipeline), elsewhere).items()} == {
        "numbers": "cached", "total": "cached"}
    # ... and a stage it recomputes gets its input downloaded from the bucket.
    assert run(toy, elsewhere, only="total", force=True) == {"total": "ran"}
    assert (tmp_path / "cache-b" / s3_root.replace("://", "/") / "numbers" / key / "numbers.parquet").is_file()
    assert len(objects(s3_root, "total")) == 3, "the forced rerun replaced the artefact rather than adding files"


def test_the_manifest_is_uploaded_after_every_other_file(toy, s3_root, tmp_path):
    recording = RecordingHandler(open_store(s3_root).filesystem)
    store = RemoteArtefactStore(s3_root, tmp_path / "cache", filesystem=pafs.PyFileSystem(recording))
    run(toy, store, targets=["numbers"])
    names = [path.rsplit("/", 1)[1] for path in recording.written if "/numbers/" in path and "/.lock-" not in path]
    assert names[-1] == MANIFEST and sorted(names[:-1]) == ["config.yaml", "numbers.parquet"]


def test_an_upload_that_dies_before_the_manifest_leaves_the_stage_missing_and_the_next_run_redoes_it(toy, s3_root, tmp_path):
    failing = RemoteArtefactStore(s3_root, tmp_path / "cache", filesystem=pafs.PyFileSystem(RecordingHandler(open_store(s3_root).filesystem, fail_on=MANIFEST)))
    with pytest.raises(StageFailed, match="stage numbers failed: OSError: upload of .* interrupted"):
        run(toy, failing, targets=["numbers"])
    (leftover,) = {name.split("/")[0] for name in objects(s3_root, "numbers") if not name.startswith(".lock-")}
    assert f"{leftover}/numbers.parquet" in objects(s3_root, "numbers"), "the data files were uploaded"
    store = open_store(s3_root, tmp_path / "cache")
    assert not store.is_complete("numbers", leftover) and store.complete_keys("numbers") == []
    assert stage_states(load_pipeline(toy.pipeline), store)["numbers"][1] == "missing"
    assert not any(name.startswith(".lock-") for name in objects(s3_root, "numbers")), "the failed run kept its lock"
    assert run(toy, store) == {"numbers": "ran", "total": "ran"}
    assert objects(s3_root, "numbers") == [f"{leftover}/{MANIFEST}", f"{leftover}/config.yaml", f"{leftover}/numbers.parquet"]


def test_a_killed_run_leaves_a_lock_and_no_manifest_and_the_next_run_takes_over(toy, s3_root, tmp_path, ray_runtime):
    cache = str(tmp_path / "cache")
    command, env = toy.cli("run", str(toy.pipeline), "numbers", "--artefacts", s3_root, "--cache", cache,
                           "--address", ray_runtime.get_runtime_context().gcs_address, "--set", "numbers.sleep_after_write=5")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "cache").rglob("numbers/.tmp-*/started")):
        assert process.poll() is None and time.monotonic() < deadline, "the stage never started"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [name for name in objects(s3_root, "numbers") if name.startswith(".lock-")], "the killed run held no lock"
    store = open_store(s3_root, tmp_path / "cache")
    assert store.complete_keys("numbers") == []
    # Same params, same key: the dead run's lock (same host, pid gone) is taken over at once.
    assert run(toy, store, "numbers.sleep_after_write=5", targets=["numbers"]) == {"numbers": "ran"}
    assert len(store.complete_keys("numbers")) == 1
    assert not [name for name in objects(s3_root, "numbers") if name.startswith(".lock-")]
