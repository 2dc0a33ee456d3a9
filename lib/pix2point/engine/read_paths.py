"""The files and folders a stage's params name for it to read (params typed io.paths.AbsolutePath), checked
before a run starts Ray: a missing data root then costs one line and exit 2, not a traceback from a task."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic

from pix2point.io.paths import READ_BY_STAGE


def read_path_problems(stage: str, params: pydantic.BaseModel) -> list[str]:
    """One line per path the stage reads that does not exist or is an empty folder, naming the stage and param."""
    problems = []
    for name, path in read_paths(params):
        if not path.exists():
            problems.append(f"stage {stage!r}: param {name!r}: {path} does not exist")
        elif path.is_dir() and not any(path.iterdir()):
            problems.append(f"stage {stage!r}: param {name!r}: {path} is an empty folder")
    return problems


def read_paths(params: pydantic.BaseModel, prefix: str = "") -> Iterator[tuple[str, Path]]:
    """(dotted param name, path) of every set path param marked READ_BY_STAGE, nested models and lists included."""
    for name, field in type(params).model_fields.items():
        value = getattr(params, name)
        dotted = f"{prefix}{name}"
        if isinstance(value, Path) and (READ_BY_STAGE in field.metadata or _marked(field.annotation)):
            yield dotted, value
        for index, item in enumerate(value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(item, pydantic.BaseModel):
                yield from read_paths(item, f"{dotted}.{index}." if isinstance(value, (list, tuple)) else f"{dotted}.")


def _marked(annotation: Any) -> bool:
    """Whether the marker sits anywhere in the annotation (`AbsolutePath | None` keeps it inside a Union)."""
    if READ_BY_STAGE in getattr(annotation, "__metadata__", ()):
        return True
    return any(_marked(argument) for argument in typing.get_args(annotation))
