"""A stage's progress as one short line ("tasks 3/8", "runs 2/12"), for whoever shows the run (the live view).

The engine opens `reporting_to(sink)` on the thread that runs a stage; code of that stage calls `report`.
Outside such a block (tests, benchmarks, a stage called directly) `report` does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_sink: ContextVar[Callable[[str], None] | None] = ContextVar("progress_sink", default=None)


@contextmanager
def reporting_to(sink: Callable[[str], None]) -> Iterator[None]:
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def report(done: int, total: int, unit: str) -> None:
    """`done` of `total` `unit` (plural noun: "tasks", "runs") are finished."""
    sink = _sink.get()
    if sink is not None:
        sink(f"{unit} {done}/{total}")
