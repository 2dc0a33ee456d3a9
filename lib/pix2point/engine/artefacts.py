"""Artefact directories: `<root>/<stage>/<key>/` with `_manifest.json` written last.

A stage fills a private temporary directory next to its final place; the manifest is written into it
once everything else is there, and the directory is renamed into place in one step. A directory
without a manifest is never treated as an artefact, so a killed run leaves nothing that counts.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

MANIFEST = "_manifest.json"
CONFIG = "config.yaml"
_TEMP_PREFIX = ".tmp-"
_SCRATCH_PREFIX = ".scratch-"


class ArtefactStore:
    def __init__(self, root: Path):
        self.root = root.resolve()

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def is_complete(self, stage: str, key: str) -> bool:
        return (self.path(stage, key) / MANIFEST).is_file()

    def manifest(self, stage: str, key: str) -> dict[str, Any]:
        return json.loads((self.path(stage, key) / MANIFEST).read_text())

    def complete_keys(self, stage: str) -> list[str]:
        stage_dir = self.root / stage
        if not stage_dir.is_dir():
            return []
        return sorted(entry.name for entry in stage_dir.iterdir() if (entry / MANIFEST).is_file())

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

    def commit(self, temporary: Path, stage: str, key: str, manifest: dict[str, Any]) -> Path:
        """Write config and manifest (last), then move `temporary` to the artefact's place."""
        (temporary / CONFIG).write_text(yaml.safe_dump({"stage": stage, "key": key, "params": manifest["params"], "inputs": manifest["inputs"]}, sort_keys=False))
        manifest = {**manifest, "files": _list_files(temporary)}
        (temporary / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        final = self.path(stage, key)
        if final.exists():
            # Recomputed on purpose (--force), or left half-done by a crash: set the old one aside first.
            retired = final.with_name(f"{_TEMP_PREFIX}retired-{key}-{uuid.uuid4().hex[:8]}")
            final.rename(retired)
            temporary.rename(final)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            temporary.rename(final)
        return final

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
            if owner is not None and owner[0] == host and not _process_alive(owner[1]):
                shutil.rmtree(entry, ignore_errors=True)


def _temporary_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) from `.tmp-<key>-<host>-<pid>-<random>`; None for other names."""
    host_and_pid = name[len(_TEMP_PREFIX):].partition("-")[2].rpartition("-")[0]
    host, _, pid = host_and_pid.rpartition("-")
    return (host, int(pid)) if host and pid.isdigit() else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _list_files(directory: Path) -> list[dict[str, Any]]:
    return [
        {"path": str(path.relative_to(directory)), "bytes": path.stat().st_size}
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    ]
