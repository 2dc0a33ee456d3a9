"""Path params a stage reads: absolute, so they mean the same thing on every node of a Ray cluster, and marked
READ_BY_STAGE, so the engine checks they exist before a run starts (engine/read_paths.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo


def _require_absolute(path: Path, info: ValidationInfo) -> Path:
    if not path.is_absolute():
        # Ray jobs and tasks run from a copy of the working directory, where a relative path means something else.
        raise ValueError(f"{info.field_name} must be an absolute path (Ray jobs run from a copy of the working dir): {path}")
    return path


READ_BY_STAGE = "read by the stage: must exist (a folder: not empty) before the run starts"
AbsolutePath = Annotated[Path, AfterValidator(_require_absolute), READ_BY_STAGE]
