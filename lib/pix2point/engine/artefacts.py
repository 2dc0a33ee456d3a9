"""Artefact directories on a local or shared POSIX path: `<root>/<stage>/<key>/`, `_manifest.json` written last.

A stage fills a private temporary directory next to its final place; the manifest is written into it
once everything else is there, and the directory is renamed into place in one step. A directory
without a manifest is never treated as an artefact, so a killed run leaves nothing that counts.
`<root>/<stage>/.lock-<key>` is held while a run computes that artefact (see locks.py).

An object-store root (`s3://...`) has the same interface in remote.py; `stores.open_store` picks one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import yaml

from pix2point.engine.integrity import file_entry, local_differences
from pix2point.engine.locks import FileLockRecord, Holder, holding, live_holder, process_alive

MANIFEST = "_manifest.json"
CONFIG = "config.yaml"
_TEMP_PREFIX = ".tmp-"
_SCRATCH_PREFIX = ".scratch-"
_LOCK_PREFIX = ".lock-"


class ArtefactStore:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def location(self, stage: str, key: str) -> str:
        """Where the artefact lives, for people: a path here, a URI for an object store."""
        return str(self.path(stage, key))

    def local_copy(self, stage: str, key: str) -> Path:
        """A local directory holding the finished artefact (what a stage's `inputs` point to)."""
        return self.path(stage, key)

    def is_complete(self, stage: str, key: str) -> bool:
        return (self.path(stage, key) / MANIFEST).is_file()

    def manifest(self, stage: str, key: str) -> dict[str, Any]:
        return json.loads((self.path(stage, key) / MANIFEST).read_text())

    def damage(self, stage: str, key: str, hashes: bool = False) -> list[str]:
        """How a complete artefact's files differ from its manifest (integrity.py); empty when intact."""
        return local_differences(self.path(stage, key), self.manifest(stage, key)["files"], hashes)

    def complete_keys(self, stage: str) -> list[str]:
        stage_dir = self.root / stage
        if not stage_dir.is_dir():
            return []
        return sorted(entry.name for entry in stage_dir.iterdir() if (entry / MANIFEST).is_file())

    def lock(self, stage: str, key: str) -> AbstractContextManager[None]:
        """Held while this run computes the artefact; waits while another live run holds it."""
        return holding(self._lock_record(stage, key), f"stage {stage} (key {key})")

    def lock_holder(self, stage: str, key: str) -> Holder | None:
        """The live run computing this artefact now, if any (see locks.live_holder)."""
        return live_holder(self._lock_record(stage, key))

    def _lock_record(self, stage: str, key: str) -> FileLockRecord:
        return FileLockRecord(self.root / stage / f"{_LOCK_PREFIX}{key}")

    @contextmanager
    def writing(self, stage: str, key: str) -> Iterator[Path]:
        """An empty private directory to fill; removed if the block raises."""
        self._remove_abandoned_temporaries(stage)
        temporary = self.root / stage / f"{_TEMP_PREFIX}{key}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        temporary.mkdir(parents=True)
        try:
            yield temporary
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise

    def commit(self, temporary: Path, stage: str, key: str, manifest: dict[str, Any]) -> None:
        """Write config and manifest (last), then move `temporary` to the artefact's place."""
        write_manifest(temporary, describe_files(temporary, stage, key, manifest))
        self.install(temporary, stage, key)

    def install(self, temporary: Path, stage: str, key: str, replace: bool = True) -> None:
        """Move a finished directory (manifest inside) into place. With `replace=False` an artefact that
        is already there wins and `temporary` is dropped (two copies of one key are interchangeable)."""
        final = self.path(stage, key)
        if final.exists() and not replace and self.is_complete(stage, key):
            shutil.rmtree(temporary, ignore_errors=True)
        elif final.exists():
            # Recomputed on purpose (--force), or left half-done by a crash: set the old one aside first.
            retired = final.with_name(f"{_TEMP_PREFIX}retired-{key}-{uuid.uuid4().hex[:8]}")
            final.rename(retired)
            temporary.rename(final)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            temporary.rename(final)

    def discard(self, stage: str, key: str) -> None:
        """Remove an artefact, its manifest first so that it stops counting at once."""
        (self.path(stage, key) / MANIFEST).unlink(missing_ok=True)
        shutil.rmtree(self.path(stage, key), ignore_errors=True)

    def scratch(self, stage: str, key: str) -> Path:
        """A working directory for one key that survives killed runs (checkpoints to resume from)."""
        path = self.root / stage / f"{_SCRATCH_PREFIX}{key}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remove_scratch(self, stage: str, key: str) -> None:
        shutil.rmtree(self.root / stage / f"{_SCRATCH_PREFIX}{key}", ignore_errors=True)

    def _remove_abandoned_temporaries(self, stage: str) -> None:
        """Temporary directories of runs on this host whose process is gone (killed runs)."""
        stage_dir = self.root / stage
        if not stage_dir.is_dir():
            return
        host = socket.gethostname()
        for entry in stage_dir.glob(f"{_TEMP_PREFIX}*"):
            owner = _temporary_owner(entry.name)
            if owner is not None and owner[0] == host and not process_alive(owner[1]):
                shutil.rmtree(entry, ignore_errors=True)


def describe_files(directory: Path, stage: str, key: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write `config.yaml` into a finished stage directory; the manifest with its file list (not yet written)."""
    config = {"stage": stage, "key": key, "params": manifest["params"], "inputs": manifest["inputs"]}
    (directory / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    return {**manifest, "files": _list_files(directory)}


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST).write_text(manifest_text(manifest))


def manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True)


def _temporary_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) from `.tmp-<key>-<host>-<pid>-<random>`; None for other names."""
    host_and_pid = name[len(_TEMP_PREFIX):].partition("-")[2].rpartition("-")[0]
    host, _, pid = host_and_pid.rpartition("-")
    return (host, int(pid)) if host and pid.isdigit() else None


def _list_files(directory: Path) -> list[dict[str, Any]]:
    return [
        file_entry(path, str(path.relative_to(directory)))
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    ]
