"""One run at a time per artefact: a lock per (stage, key) beside the artefact, so that concurrent runs
of a pipeline on one artefact root compute a stage once and the others wait and then find it cached.

The lock is a small JSON record `{token, host, pid, started_at, beat}`. Its holder rewrites it every
`HEARTBEAT_SECONDS` with `beat` + 1 and removes it when the stage is done or has failed. A waiter takes
the lock over when it is stale:

- the holder ran on this host and its pid is gone (a killed run): at once;
- otherwise (the holder is on another host, or its record is unreadable) when the record has not
  changed for `STALE_AFTER_SECONDS`, timed by the waiter's own clock, so hosts need no synchronised clocks.

Taking over removes the record only if it still reads as the stale one; two waiters taking over the same
stale lock within microseconds of each other could both proceed (the object-store case below).

Where the lock lives decides how strong it is:

- POSIX paths (local disk, NFS): the record is created with O_CREAT|O_EXCL, so exactly one run holds it.
- Object stores (pyarrow.fs, e.g. S3) have no create-if-absent: a run writes its record, waits
  `OBJECT_STORE_SETTLE_SECONDS` and reads it back; the last writer wins and the others back off. Two runs
  can both hold it only if one's existence check and write are further apart than the settle time. Even
  then no artefact is corrupted: each run stages its files locally and the manifest, uploaded last, makes
  the artefact count; the cost is one stage computed twice.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import pyarrow.fs as pafs

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 60.0
POLL_SECONDS = 0.5
OBJECT_STORE_SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class Holder:
    token: str
    host: str
    pid: int
    started_at: str
    beat: int = 0

    @classmethod
    def me(cls) -> Holder:
        return cls(uuid.uuid4().hex, socket.gethostname(), os.getpid(), datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @classmethod
    def parse(cls, text: str | None) -> Holder | None:
        """None for a record that is absent, empty or half-written."""
        try:
            return cls(**json.loads(text)) if text else None
        except (ValueError, TypeError):
            return None

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    def is_dead_on_this_host(self) -> bool:
        return self.host == socket.gethostname() and not process_alive(self.pid)


class LockRecord(Protocol):
    """Where one lock's record lives; `create` is the only step that must be exclusive."""

    def create(self, text: str) -> bool: ...
    def read(self) -> str | None: ...
    def write(self, text: str) -> None: ...
    def remove(self) -> None: ...


class FileLockRecord:
    def __init__(self, path: Path):
        self.path = path

    def create(self, text: str) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        return True

    def read(self) -> str | None:
        try:
            return self.path.read_text()
        except FileNotFoundError:
            return None

    def write(self, text: str) -> None:
        # Replaced whole, so a reader never sees half a record.
        staging = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex[:8]}")
        staging.write_text(text)
        os.replace(staging, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class ObjectLockRecord:
    def __init__(self, filesystem: pafs.FileSystem, path: str, settle_seconds: float = OBJECT_STORE_SETTLE_SECONDS):
        self.filesystem = filesystem
        self.path = path
        self.settle_seconds = settle_seconds

    def create(self, text: str) -> bool:
        if self.read() is not None:
            return False
        self.write(text)
        time.sleep(self.settle_seconds)
        return self.read() == text

    def read(self) -> str | None:
        try:
            with self.filesystem.open_input_stream(self.path) as stream:
                return stream.read().decode()
        except FileNotFoundError:
            return None

    def write(self, text: str) -> None:
        with self.filesystem.open_output_stream(self.path) as stream:
            stream.write(text.encode())

    def remove(self) -> None:
        try:
            self.filesystem.delete_file(self.path)
        except FileNotFoundError:
            pass


def live_holder(record: LockRecord) -> Holder | None:
    """Who holds the lock now, for display (`pix2point status`); None when it is free or its holder is a dead
    process on this host. A holder on another host counts as live: only waiting out the heartbeat could tell."""
    holder = Holder.parse(record.read())
    return None if holder is None or holder.is_dead_on_this_host() else holder


@contextmanager
def holding(record: LockRecord, what: str, stale_after: float = STALE_AFTER_SECONDS) -> Iterator[None]:
    """Hold `record`'s lock for the block, waiting (with a logged message) while another live run holds it."""
    me = Holder.me()
    _acquire(record, me, what, stale_after)
    stop = threading.Event()
    beating = threading.Thread(target=_heartbeat, args=(record, me, what, stop), name=f"lock heartbeat: {what}", daemon=True)
    beating.start()
    try:
        yield
    finally:
        stop.set()
        beating.join()
        current = Holder.parse(record.read())
        if current is not None and current.token == me.token:
            record.remove()


def _acquire(record: LockRecord, me: Holder, what: str, stale_after: float) -> None:
    last_seen: str | None = None
    unchanged_since = time.monotonic()
    waiting_logged = False
    while not record.create(me.dumps()):
        text = record.read()
        if text is None:
            continue  # released between our attempt and the read
        if text != last_seen:
            last_seen, unchanged_since = text, time.monotonic()
        holder = Holder.parse(text)
        if _is_stale(holder, time.monotonic() - unchanged_since, stale_after):
            log.warning("%s: taking over the lock of a run that is gone (%s)", what, _describe(holder))
            _remove_if_unchanged(record, text)
            continue
        if not waiting_logged:
            log.info("%s: another run is computing it (%s); waiting for it to finish", what, _describe(holder))
            waiting_logged = True
        time.sleep(POLL_SECONDS)
    if waiting_logged:
        log.info("%s: the other run has finished", what)


def _is_stale(holder: Holder | None, unchanged_for: float, stale_after: float) -> bool:
    if holder is not None and holder.is_dead_on_this_host():
        return True
    return unchanged_for > stale_after


def _remove_if_unchanged(record: LockRecord, stale_text: str) -> None:
    # Another waiter may have taken it over already; only remove the record we judged stale.
    if record.read() == stale_text:
        record.remove()


def _heartbeat(record: LockRecord, me: Holder, what: str, stop: threading.Event) -> None:
    beat = 0
    while not stop.wait(HEARTBEAT_SECONDS):
        current = Holder.parse(record.read())
        if current is None or current.token != me.token:
            log.error("%s: lost the lock to another run (%s); this run's result still counts only once complete", what, _describe(current))
            return
        beat += 1
        record.write(replace(me, beat=beat).dumps())


def _describe(holder: Holder | None) -> str:
    if holder is None:
        return "holder unknown"
    return f"host {holder.host}, pid {holder.pid}, since {holder.started_at}"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
