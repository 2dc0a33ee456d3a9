"""An artefact's files against its manifest: sizes (cheap, checked whenever an artefact is used) and SHA-256
content hashes (recorded at commit, checked by `pix2point status --verify`).

A damaged artefact (a file missing, truncated, grown or changed) counts as missing: `run` says so and
builds it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

_CHUNK_BYTES = 1 << 20


def file_entry(path: Path, relative: str) -> dict[str, Any]:
    """A manifest's record of one file: {path, bytes, sha256}."""
    with open(path, "rb") as stream:
        digest = stream_sha256(stream)
    return {"path": relative, "bytes": path.stat().st_size, "sha256": digest}


def stream_sha256(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()


def differences(listed: Iterable[dict[str, Any]], size_of: Callable[[str], int | None],
                sha256_of: Callable[[str], str] | None = None) -> list[str]:
    """What differs between the manifest's `files` and the files as they are, one line per file:
    `<path>: missing`, `<path>: <n> bytes, the manifest says <m>`, `<path>: content differs (SHA-256 ...)`.

    `size_of(path)` is None for a missing file; with `sha256_of`, files of the right size are also hashed
    (entries from before hashes were recorded are checked by size only)."""
    found = []
    for entry in listed:
        size = size_of(entry["path"])
        if size is None:
            found.append(f"{entry['path']}: missing")
        elif size != entry["bytes"]:
            found.append(f"{entry['path']}: {size} bytes, the manifest says {entry['bytes']}")
        elif sha256_of is not None and "sha256" in entry:
            actual = sha256_of(entry["path"])
            if actual != entry["sha256"]:
                found.append(f"{entry['path']}: content differs (SHA-256 {actual[:12]}..., the manifest says "
                             f"{entry['sha256'][:12]}...)")
    return found


def local_differences(directory: Path, listed: Iterable[dict[str, Any]], hashes: bool) -> list[str]:
    """`differences` for an artefact directory on a local or shared path."""

    def size_of(relative: str) -> int | None:
        path = directory / relative
        return path.stat().st_size if path.is_file() else None

    def sha256_of(relative: str) -> str:
        with open(directory / relative, "rb") as stream:
            return stream_sha256(stream)

    return differences(listed, size_of, sha256_of if hashes else None)
