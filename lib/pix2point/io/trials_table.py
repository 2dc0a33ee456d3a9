"""`trials.parquet` of a stage that trains a grid of runs side by side (finetune, classify).

    <artefact>/trials.parquet   one row per run, in the grid's order: run, started_at, finished_at (UTC
                                timestamps, seconds: the attempt that finished the run), seconds (wall time
                                of that attempt), resumed_from_step (0 when it trained from the first step;
                                else the checkpointed step a restarted stage continued it from),
                                worker_peak_rss_mb (rank 0's peak resident memory in that attempt, MB;
                                null for a record older than the column)

Runs whose intervals overlap trained at the same time; a run finished by an earlier, killed attempt keeps
that attempt's times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from pix2point.io.arrow import write_table

TRIALS_FILE = "trials.parquet"
SCHEMA = pa.schema([
    ("run", pa.string()), ("started_at", pa.timestamp("ms", tz="UTC")), ("finished_at", pa.timestamp("ms", tz="UTC")),
    ("seconds", pa.float64()), ("resumed_from_step", pa.int64()), ("worker_peak_rss_mb", pa.float64()),
])


class TimedRun(Protocol):
    run: str
    started_at: float  # Unix seconds
    finished_at: float
    resumed_from_step: int
    worker_peak_rss_mb: float | None


@dataclass(frozen=True)
class Trial:
    run: str
    started_at: datetime
    finished_at: datetime
    seconds: float
    resumed_from_step: int
    worker_peak_rss_mb: float | None


def write_trials(out: Path, runs: list[TimedRun]) -> None:
    utc = lambda seconds: datetime.fromtimestamp(seconds, timezone.utc)  # noqa: E731
    write_table(pa.Table.from_pylist([
        {"run": r.run, "started_at": utc(r.started_at), "finished_at": utc(r.finished_at),
         "seconds": r.finished_at - r.started_at, "resumed_from_step": r.resumed_from_step,
         "worker_peak_rss_mb": r.worker_peak_rss_mb} for r in runs
    ], schema=SCHEMA), out / TRIALS_FILE)


def read_trials(artefact: Path) -> list[Trial]:
    return [Trial(**row) for row in pq.read_table(artefact / TRIALS_FILE).to_pylist()]
