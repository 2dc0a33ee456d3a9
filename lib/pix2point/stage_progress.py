"""A running stage's progress in a few words, for the live view: a count ("runs 3/12", "tasks 5/8") and
the latest training line ("<run>: step 40/150, loss 1.2, ..., ETA 1m05s").

The engine opens `reporting_to(sink)` on the thread that runs a stage; code of that stage calls `report` or
`say`, from that thread or from one started with a copy of its context (`contextvars.copy_context`).
Outside such a block (tests, benchmarks, a stage called directly) both do nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

Kind = Literal["count", "line"]
_sink: ContextVar[Callable[[Kind, str], None] | None] = ContextVar("stage_progress_sink", default=None)


@contextmanager
def reporting_to(sink: Callable[[Kind, str], None] | None) -> Iterator[None]:
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def report(done: int, total: int, unit: str) -> None:
    """`done` of `total` `unit` (a plural noun: "tasks", "runs") are finished."""
    if (sink := _sink.get()) is not None:
        sink("count", f"{unit} {done}/{total}")


def say(line: str) -> None:
    """The latest line of what the stage is doing (a training progress line)."""
    if (sink := _sink.get()) is not None:
        sink("line", line)
