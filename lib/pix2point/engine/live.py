"""The live view of a run on a terminal: one line per stage (waiting, running with its progress, done,
cached, failed), redrawn in place (rich.live) while stages run side by side, instead of their interleaved
log lines. Those lines still go to the run's log file; warnings are printed above the view.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pix2point.stage_progress import Kind

State = Literal["waiting", "running", "done", "cached", "failed"]
_STYLE = {"waiting": "dim", "running": "bold cyan", "done": "green", "cached": "dim green", "failed": "bold red"}


@dataclass
class _Line:
    state: State = "waiting"
    since: float = field(default_factory=time.monotonic)
    progress: dict[str, str] = field(default_factory=dict)  # stage_progress kind -> its latest text
    seconds: float | None = None  # once done


class StageBoard:
    """What each stage of a run is doing; any thread may update it, rich renders it through `__rich__`."""

    def __init__(self, stages: Sequence[str]):
        self._lines = {stage: _Line() for stage in stages}
        self._lock = threading.Lock()

    def update(self, stage: str, state: State, seconds: float | None = None) -> None:
        with self._lock:
            self._lines[stage] = _Line(state, seconds=seconds)

    def progress(self, stage: str, kind: Kind, text: str) -> None:
        """A stage_progress sink for `stage`."""
        with self._lock:
            self._lines[stage].progress[kind] = text

    def rows(self) -> list[tuple[str, State, str]]:
        """(stage, state, detail) per stage, in the pipeline's order."""
        now = time.monotonic()
        with self._lock:
            lines = [(stage, line.state, line.since, dict(line.progress), line.seconds) for stage, line in self._lines.items()]
        rows = []
        for stage, state, since, progress, seconds in lines:
            detail = ""
            if state == "running":
                detail = "  ".join([f"{now - since:.0f} s", *(progress[kind] for kind in ("count", "line") if kind in progress)])
            elif state == "done" and seconds is not None:
                detail = f"{seconds:.1f} s"
            rows.append((stage, state, detail))
        return rows

    def __rich__(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        # A long progress line is cut, never a stage name or its state.
        table.add_column("stage", no_wrap=True, min_width=max(map(len, self._lines), default=0))
        table.add_column("state", no_wrap=True, min_width=max(map(len, _STYLE)))
        table.add_column("detail", overflow="ellipsis", no_wrap=True)
        for stage, state, detail in self.rows():
            table.add_row(stage, Text(state, style=_STYLE[state]), detail)
        return table


@contextmanager
def showing(board: StageBoard, console: Console) -> Iterator[None]:
    """Draw `board` on `console` while the block runs, if the console is a terminal (a job log or a pipe gets
    the plain log lines instead). Meanwhile the console's log handlers only pass warnings, printed above it."""
    if not console.is_terminal:
        yield
        return
    handlers = [handler for handler in logging.getLogger().handlers
                if isinstance(handler, logging.StreamHandler) and handler.stream is console.file]
    with Live(board, console=console, refresh_per_second=2, redirect_stdout=False, redirect_stderr=False) as live:
        saved = [(handler, handler.stream, handler.level) for handler in handlers]
        for handler in handlers:
            handler.setStream(_AboveLive(live))
            handler.setLevel(max(handler.level, logging.WARNING))
        try:
            yield
        finally:
            for handler, stream, level in saved:
                handler.setStream(stream)
                handler.setLevel(level)


class _AboveLive:
    """A text stream that prints through the live display, above it."""

    def __init__(self, live: Live):
        self._live = live

    def write(self, text: str) -> int:
        self._live.console.print(Text(text.rstrip("\n")), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        pass
