"""`trials.parquet` of a stage that trains a grid of runs side by side (finetune, classify).

    <artefact>/trials.parquet   one row per run, in the grid's order: run, started_at, finished_at (UTC
                                timestamps, seconds: the attempt that finished the run), seconds (wall time
                                of that attempt), resumed_from_step (0 when it trained from the first step;
                                else the checkpointed step a restarted stage continued it from),
                                worker_peak_rss_mb (rank 0's peak resident memory in that attempt, MB;
                                null for a record older than the column), trainer (the concurrency slot,
                                one TorchTrainer, that trained it: runs with the same trainer trained one
                                after another), node (the Ray node id, hex, of that trainer's rank-0 worker)

Runs whose intervals overlap trained at the same time; a run finished by an earlier, killed attempt keeps
that attempt's times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from pix2point.io.records import read_records, write_records

TRIALS_FILE = "trials.parquet"
SCHEMA = pa.schema([
    ("run", pa.string()), ("started_at", pa.timestamp("ms", tz="UTC")), ("finished_at", pa.timestamp("ms", tz="UTC")),
    ("seconds", pa.float64()), ("resumed_from_step", pa.int64()), ("worker_peak_rss_mb", pa.float64()),
    ("trainer", pa.string()), ("node", pa.string()),
])


class TimedRun(Protocol):
    run: str
    started_at: float  # Unix seconds
    finished_at: float
    resumed_from_step: int
    worker_peak_rss_mb: float | None
    trainer: str | None
    node: str | None


@dataclass(frozen=True)
class Trial:
    run: str
    started_at: datetime
    finished_at: datetime
    seconds: float
    resumed_from_step: int
    worker_peak_rss_mb: float | None
    trainer: str | None = None  # None: a table older than the column
    node: str | None = None


def trial(run: TimedRun) -> Trial:
    """A run's times as a trials row: Unix seconds -> UTC datetimes, wall seconds of the attempt."""
    utc = lambda seconds: datetime.fromtimestamp(seconds, timezone.utc)  # noqa: E731
    return Trial(run.run, utc(run.started_at), utc(run.finished_at), run.finished_at - run.started_at,
                 run.resumed_from_step, run.worker_peak_rss_mb, run.trainer, run.node)


def write_trials(out: Path, runs: list[TimedRun]) -> None:
    write_records(out / TRIALS_FILE, [trial(run) for run in runs], SCHEMA)


def read_trials(artefact: Path) -> list[Trial]:
    return read_records(artefact / TRIALS_FILE, Trial)
