"""Concurrent runs on one artefact root: a stage is computed once, the other run waits and finds it cached."""

import logging
import socket
import subprocess
import sys
import threading
import time

import pytest

from pix2point.engine import locks
from pix2point.engine.artefacts import MANIFEST, ArtefactStore
from pix2point.engine.locks import FileLockRecord, Holder, ObjectLockRecord, holding
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import compute_keys, run_pipeline
from pix2point.engine.stores import open_store


@pytest.fixture(params=["local", "s3"])
def root(request, toy) -> str:
    return str(toy.artefacts) if request.param == "local" else request.getfixturevalue("s3_root")


def test_two_runs_at_once_compute_each_stage_once_and_both_succeed(toy, root, tmp_path, ray_runtime):
    record = tmp_path / "numbers-runs.txt"
    processes = []
    for name in ("a", "b"):
        command, env = toy.cli("run", str(toy.pipeline), "--artefacts", root, "--cache", str(tmp_path / f"cache-{name}"),
                               "--address", ray_runtime.get_runtime_context().gcs_address,
                               "--set", f"numbers.record_runs_to={record}", "--set", "numbers.sleep_after_write=3")
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert len(record.read_text().splitlines()) == 1, "the numbers stage ran more than once"
    assert sum("another run is computing it" in stdout for stdout, _ in outputs) >= 1, "neither run waited"
    store = open_store(root, tmp_path / "cache-check")
    pipeline = load_pipeline(toy.pipeline, overrides=[f"numbers.record_runs_to={record}", "numbers.sleep_after_write=3"])
    assert {o.stage: o.status for o in run_pipeline(pipeline, store)} == {"numbers": "cached", "total": "cached"}
    assert len(store.complete_keys("numbers")) == 1 and len(store.complete_keys("total")) == 1


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over_at_once(toy, caplog):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = Holder("left-behind", socket.gethostname(), int(finished.stdout), "2026-01-01T00:00:00+00:00")
    store = ArtefactStore(toy.artefacts)
    key = compute_keys(load_pipeline(toy.pipeline))["numbers"]
    lock_path = toy.artefacts / "numbers" / f".lock-{key}"
    assert FileLockRecord(lock_path).create(dead.dumps())
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="pix2point.engine.locks"):
        outcomes = run_pipeline(load_pipeline(toy.pipeline), store, targets=["numbers"])
    assert [o.status for o in outcomes] == ["ran"] and time.monotonic() - started < locks.STALE_AFTER_SECONDS
    assert "taking over the lock of a run that is gone" in caplog.text
    assert not lock_path.exists() and (store.path("numbers", key) / MANIFEST).is_file()


def test_a_live_holder_is_waited_for_and_a_silent_one_elsewhere_is_taken_over(tmp_path):
    record = FileLockRecord(tmp_path / ".lock-k")
    order = []
    held = threading.Event()

    def first():
        with holding(record, "first"):
            held.set()
            time.sleep(1.0)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait()
    with holding(record, "second"):
        order.append("second holds")
    thread.join()
    assert order == ["first done", "second holds"]

    # A holder on another host cannot be checked by pid: its record must stop changing for `stale_after`.
    record.create(Holder("silent", "another-host", 1, "2026-01-01T00:00:00+00:00").dumps())
    started = time.monotonic()
    with holding(record, "third", stale_after=1.0):
        waited = time.monotonic() - started
    assert 1.0 <= waited < 10


def test_the_holder_heartbeat_keeps_its_lock_from_looking_stale(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "HEARTBEAT_SECONDS", 0.2)
    record = FileLockRecord(tmp_path / ".lock-k")
    with holding(record, "holder"):
        first = Holder.parse(record.read())
        time.sleep(0.7)
        later = Holder.parse(record.read())
    assert later.token == first.token and later.beat > first.beat
    assert record.read() is None


def test_object_store_lock_is_exclusive_between_two_records(s3_root):
    store = open_store(s3_root)
    path = f"{store.base}/numbers/.lock-k"
    mine, theirs = ObjectLockRecord(store.filesystem, path, 0.2), ObjectLockRecord(store.filesystem, path, 0.2)
    assert mine.create(Holder.me().dumps())
    assert not theirs.create(Holder.me().dumps())
    mine.remove()
    assert theirs.create(Holder.me().dumps())
