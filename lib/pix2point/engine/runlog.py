"""One log file per run; a console that shows what the run does, not what Ray and its libraries say.

While `quiet_console` is open, this process's stdout and stderr file descriptors point at the run's log
file: Ray's and Ray Train's loggers, the lines Ray forwards from its workers, C++ logs and warnings all
land there, whatever wrote them. The console keeps the project's own log records at INFO (logger
`pix2point`: stages starting, training progress) and, once per run, each distinct warning of this process.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

LOGS_DIR = "_logs"  # under the artefact root; not a stage name (stage names are identifiers)
PROJECT_LOGGER = "pix2point"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def new_log_path(root: Path) -> Path:
    """`<root>/_logs/run-<UTC time>-<pid>.log`, its directory created."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = Path(root) / LOGS_DIR / f"run-{stamp}-{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


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


def remove_if_empty(log_path: Path) -> None:
    """Drop the log of a run that never started, if nothing was written to it (`_logs` stays: another run on
    the same root may be creating its own log there)."""
    if log_path.is_file() and log_path.stat().st_size == 0:
        log_path.unlink()


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
        for stream in (sys.stdout, sys.stderr, console):
            stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        if console is not sys.stdout:
            console.close()


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
