"""One log file per run; a console that shows what the run does, not what Ray and its libraries say.

While `quiet_console` is open, this process's stdout and stderr file descriptors point at the run's log
file: Ray's and Ray Train's loggers, the lines Ray forwards from its workers, C++ logs and warnings all
land there, whatever wrote them. The console keeps the project's own log records at INFO (logger
`pix2point`: stages starting, training progress) and, once per run, each distinct warning of this process.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

LOGS_DIR = "_logs"  # under the artefact root; not a stage name (stage names are identifiers)
PROJECT_LOGGER = "pix2point"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The stage whose thread (or a thread started with a copy of its context) logs: stages run side by side, so a
# training line ("i2pmae: step 2/4, ...") must say whose it is.
_stage: ContextVar[str | None] = ContextVar("pix2point_stage", default=None)


@contextmanager
def naming_stage(name: str) -> Iterator[None]:
    """The project's log records made in this block (and in threads started with a copy of its context) are
    prefixed `<name>: `, unless they already begin `stage <name> `."""
    token = _stage.set(name)
    try:
        yield
    finally:
        _stage.reset(token)


def new_log_path(root: Path) -> Path:
    """`<root>/_logs/run-<UTC time>-<pid>.log`, its directory created; `-<n>` added for a second run of this
    process within the second (each run's log is its own: a run that computes nothing removes it)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"run-{stamp}-{os.getpid()}"
    path = Path(root) / LOGS_DIR / f"{name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    for number in itertools.count(2):
        if not path.exists():
            return path
        path = path.with_name(f"{name}-{number}.log")


@contextmanager
def quiet_console(log_path: Path, verbose: bool = False) -> Iterator[TextIO]:
    """Send everything this process writes to `log_path`; yields the stream the console still reaches.

    With `verbose`, nothing is redirected: the console shows everything and the log file gets the log
    records as well.
    """
    console = sys.stdout
    with open(log_path, "a", buffering=1) as log_file:
        file_handler = _handler(logging.FileHandler(log_path), logging.INFO, _FORMAT)
        if verbose:
            with _handlers(file_handler, _handler(logging.StreamHandler(console), logging.INFO, _FORMAT)):
                yield console
            return
        with _descriptors_to(log_file) as console:
            console_handler = logging.StreamHandler(console)
            console_handler.setLevel(logging.INFO)
            console_handler.setFormatter(_ConsoleFormatter())
            console_handler.addFilter(_ProjectOrFirstWarning())
            with _handlers(file_handler, console_handler), _warnings_to_logging():
                yield console


class _StageNamed(logging.Filter):
    """Prefixes a project record made under `naming_stage` with the stage's name, once, for every handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        stage = _stage.get()
        if stage and _is_project(record) and not getattr(record, "stage_named", False):
            record.stage_named = True
            message = record.getMessage()
            if not message.startswith(f"stage {stage} "):
                record.msg, record.args = f"{stage}: {message}", None
        return True


def append_traceback(log_path: Path) -> None:
    """The exception being handled, with its traceback, at the end of the log file only."""
    with open(log_path, "a") as log_file:
        traceback.print_exc(file=log_file)


@contextmanager
def _descriptors_to(log_file: TextIO) -> Iterator[TextIO]:
    """Point fds 1 and 2 at `log_file`; yields a stream on what fd 1 was (or on sys.stdout when that is no
    real fd, as under pytest's capsys). Restored on exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    console = _console_stream(saved[1])
    try:
        for fd in saved:
            os.dup2(log_file.fileno(), fd)
        yield console
    finally:
        _close_progress_bars()
        for stream in (sys.stdout, sys.stderr, console):
            stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        if console is not sys.stdout:
            console.close()


def _close_progress_bars() -> None:
    """Close the tqdm bars still open, while their last lines still go to the log: Ray keeps one on the driver
    per remote bar (Ray Data's, in the training workers), and a bar that is never closed prints its final state
    when the interpreter exits, onto the console."""
    from tqdm import tqdm

    for bar in list(tqdm._instances):  # tqdm's own registry of open bars
        bar.close()


def _console_stream(saved_stdout: int) -> TextIO:
    try:
        if sys.stdout.fileno() == 1:
            return os.fdopen(os.dup(saved_stdout), "w", buffering=1)
    except (AttributeError, OSError, ValueError):
        pass
    return sys.stdout


def _handler(handler: logging.Handler, level: int, fmt: str) -> logging.Handler:
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(fmt, "%H:%M:%S"))
    return handler


@contextmanager
def _handlers(*handlers: logging.Handler) -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    for handler in handlers:
        handler.addFilter(_StageNamed())  # the first handler to see a record names it, for all of them
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


@contextmanager
def _warnings_to_logging() -> Iterator[None]:
    """Python warnings become log records (logger `py.warnings`), under Python's default filters (which show a
    library's DeprecationWarnings to its developers, not to its users)."""
    with warnings.catch_warnings():
        logging.captureWarnings(True)
        try:
            yield
        finally:
            logging.captureWarnings(False)


def _is_project(record: logging.LogRecord) -> bool:
    return record.name == PROJECT_LOGGER or record.name.startswith(PROJECT_LOGGER + ".")


class _ProjectOrFirstWarning(logging.Filter):
    """The console's share: the project's records at INFO and above, and the first of each distinct warning."""

    def __init__(self):
        super().__init__()
        self._warned: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if _is_project(record):
            return True
        if record.levelno < logging.WARNING or _warning_text(record) in self._warned:
            return False
        self._warned.add(_warning_text(record))
        return True


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if _is_project(record):
            return f"warning: {record.getMessage()}" if record.levelno >= logging.WARNING else record.getMessage()
        return f"warning: {_warning_text(record)} (shown once; every occurrence is in the log)"


def _warning_text(record: logging.LogRecord) -> str:
    """The warning itself, without the source line that `warnings.formatwarning` appends."""
    message = record.getMessage().strip()
    if record.name == "py.warnings":
        # "<file>:<line>: <Category>: <text>\n  <source line>"
        message = message.splitlines()[0].split(": ", 1)[-1]
    return message
