"""The artefact root a run uses: a local or shared path (ArtefactStore) or an object-store URI (RemoteArtefactStore)."""

from __future__ import annotations

import os
from pathlib import Path

from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.remote import RemoteArtefactStore

Store = ArtefactStore | RemoteArtefactStore


def default_cache() -> Path:
    """Where a remote root's local mirror goes: $PIX2POINT_CACHE, else ~/.cache/pix2point."""
    return Path(os.environ.get("PIX2POINT_CACHE") or Path.home() / ".cache" / "pix2point")


def open_store(root: str, cache: Path | None = None) -> Store:
    """`s3://bucket/prefix` (any URI pyarrow.fs opens) -> RemoteArtefactStore mirrored under `cache`; a path or
    `file://` URI -> ArtefactStore."""
    scheme, separator, path = root.partition("://")
    if not separator:
        return ArtefactStore(Path(root))
    if scheme == "file":
        return ArtefactStore(Path(path))
    return RemoteArtefactStore(root, cache or default_cache())
