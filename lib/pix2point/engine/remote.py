"""Artefacts under an object-store URI (`s3://bucket/prefix`, or any root pyarrow.fs opens), same layout
and interface as artefacts.ArtefactStore.

    <uri>/<stage>/<key>/...            the artefact's files
    <uri>/<stage>/<key>/_manifest.json uploaded LAST: a prefix without it is not an artefact
    <uri>/<stage>/.lock-<key>          held while a run computes it (locks.py: the weaker object-store lock)

Stages read and write local paths, so a run keeps a local mirror (`cache`, an ArtefactStore): a stage
runs into a temporary directory there; on success every file is uploaded, then the manifest, and the
directory becomes the cached copy. An input artefact is downloaded once into the mirror and reused.
There is no rename on S3, so the manifest-last rule alone makes completion atomic: a run killed
mid-upload leaves files without a manifest, which the next run overwrites.

S3 endpoint and credentials come from the usual AWS environment variables, which pyarrow's
S3FileSystem reads itself: AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3 (an S3-compatible server such as
MinIO or Ceph), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (or ~/.aws).
"""

from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from pix2point.engine.artefacts import MANIFEST, ArtefactStore, describe_files, manifest_text
from pix2point.engine.pipeline import PipelineError
from pix2point.engine.integrity import differences, stream_sha256
from pix2point.engine.locks import Holder, ObjectLockRecord, holding, live_holder


class RemoteArtefactStore:
    def __init__(self, uri: str, cache: Path, filesystem: pafs.FileSystem | None = None):
        """`filesystem` defaults to the one `uri` names; given, `uri`'s path part is the root inside it."""
        self.uri = uri.rstrip("/")
        scheme, _, path = self.uri.partition("://")
        self.filesystem, self.base = (filesystem, path) if filesystem is not None else _open_filesystem(self.uri)
        self.cache = ArtefactStore(Path(cache) / scheme / path)

    def location(self, stage: str, key: str) -> str:
        return f"{self.uri}/{stage}/{key}"

    def is_complete(self, stage: str, key: str) -> bool:
        return self.filesystem.get_file_info(self._manifest_path(stage, key)).type == pafs.FileType.File

    def manifest(self, stage: str, key: str) -> dict[str, Any]:
        with self.filesystem.open_input_stream(self._manifest_path(stage, key)) as stream:
            return json.loads(stream.read())

    def damage(self, stage: str, key: str, hashes: bool = False) -> list[str]:
        """How the stored files differ from the manifest (sizes from one listing; hashes read every file)."""
        listed = self.manifest(stage, key)["files"]
        prefix = self._prefix(stage, key)
        infos = self.filesystem.get_file_info([f"{prefix}/{entry['path']}" for entry in listed])
        sizes = {entry["path"]: info.size if info.type == pafs.FileType.File else None for entry, info in zip(listed, infos)}

        def sha256_of(relative: str) -> str:
            with self.filesystem.open_input_stream(f"{prefix}/{relative}") as stream:
                return stream_sha256(stream)

        return differences(listed, sizes.get, sha256_of if hashes else None)

    def complete_keys(self, stage: str) -> list[str]:
        listing = self.filesystem.get_file_info(pafs.FileSelector(f"{self.base}/{stage}", allow_not_found=True))
        keys = [entry.base_name for entry in listing if entry.type == pafs.FileType.Directory]
        manifests = self.filesystem.get_file_info([self._manifest_path(stage, key) for key in keys])
        return sorted(key for key, info in zip(keys, manifests) if info.type == pafs.FileType.File)

    def lock(self, stage: str, key: str) -> AbstractContextManager[None]:
        return holding(self._lock_record(stage, key), f"stage {stage} (key {key})")

    def lock_holder(self, stage: str, key: str) -> Holder | None:
        return live_holder(self._lock_record(stage, key))

    def _lock_record(self, stage: str, key: str) -> ObjectLockRecord:
        return ObjectLockRecord(self.filesystem, f"{self.base}/{stage}/.lock-{key}")

    def local_copy(self, stage: str, key: str) -> Path:
        """The artefact in the local mirror, downloaded first if the mirror lacks it."""
        mirrored = self.cache.is_complete(stage, key)
        if mirrored and self.cache.damage(stage, key):
            self.cache.discard(stage, key)  # the mirror's copy was damaged: fetch it again
            mirrored = False
        if not mirrored:
            if not self.is_complete(stage, key):
                raise PipelineError(f"{self.location(stage, key)}: no artefact there (no {MANIFEST})")
            with self.cache.writing(stage, key) as temporary:
                pafs.copy_files(self._prefix(stage, key), str(temporary), source_filesystem=self.filesystem,
                                destination_filesystem=pafs.LocalFileSystem())
                _check_downloaded(temporary, self.location(stage, key))
                self.cache.install(temporary, stage, key, replace=False)
        return self.cache.path(stage, key)

    def writing(self, stage: str, key: str) -> AbstractContextManager[Path]:
        return self.cache.writing(stage, key)

    def commit(self, temporary: Path, stage: str, key: str, manifest: dict[str, Any]) -> None:
        """Upload every file, then the manifest; the finished directory becomes the mirror's copy."""
        manifest = describe_files(temporary, stage, key, manifest)
        prefix = self._prefix(stage, key)
        self._clear(stage, key)
        pafs.copy_files(str(temporary), prefix, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=self.filesystem)
        text = manifest_text(manifest)
        with self.filesystem.open_output_stream(self._manifest_path(stage, key)) as stream:
            stream.write(text.encode())
        (temporary / MANIFEST).write_text(text)
        self.cache.install(temporary, stage, key)

    def scratch(self, stage: str, key: str) -> Path:
        return self.cache.scratch(stage, key)

    def remove_scratch(self, stage: str, key: str) -> None:
        self.cache.remove_scratch(stage, key)

    def _clear(self, stage: str, key: str) -> None:
        """Remove an older artefact or a killed upload at this key, its manifest first so it stops counting."""
        try:
            self.filesystem.delete_file(self._manifest_path(stage, key))
        except FileNotFoundError:
            pass
        self.filesystem.delete_dir_contents(self._prefix(stage, key), missing_dir_ok=True)

    def _prefix(self, stage: str, key: str) -> str:
        return f"{self.base}/{stage}/{key}"

    def _manifest_path(self, stage: str, key: str) -> str:
        return f"{self._prefix(stage, key)}/{MANIFEST}"


def _open_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    scheme, _, path = uri.partition("://")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if scheme == "s3" and endpoint:
        # The AWS SDK inside pyarrow reads the endpoint variables only once, when pyarrow.fs is first
        # imported; passed explicitly, a variable set later (or by a test) still counts.
        region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
        return pafs.S3FileSystem(endpoint_override=endpoint, region=region), path
    return pafs.FileSystem.from_uri(uri)


def _check_downloaded(directory: Path, location: str) -> None:
    """Every file the manifest lists arrived (a download racing a --force rewrite could miss some)."""
    if not (directory / MANIFEST).is_file():
        raise PipelineError(f"{location}: its {MANIFEST} vanished during the download (rewritten by another run?)")
    listed = json.loads((directory / MANIFEST).read_text())["files"]
    missing = [entry["path"] for entry in listed if not (directory / entry["path"]).is_file()]
    if missing:
        raise PipelineError(f"{location}: download lacks files its manifest lists: {missing[:5]}")
