"""The `fewshot` artefact: N-way K-shot classification episodes (stages/fewshot.py).

    <artefact>/episodes.parquet   one row per network and episode: network, ways, shots, fold, accuracy (query
                                  objects classified right after the last step), support_objects,
                                  query_objects, steps, final_loss (mean training loss of the last epoch),
                                  seconds, classes (list of the episode's class names; episode label i is
                                  classes[i])
    <artefact>/report.md, metrics.json   mean ± std over folds per network x ways x shots
                                  (evaluation/fewshot_report.py)

Schema metadata of episodes.parquet: seed (the episodes' draw), queries (per class), epochs, steps (null: whole
epochs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from pix2point.io.arrow import read_metadata
from pix2point.io.records import read_records, write_records

EPISODES_FILE = "episodes.parquet"


@dataclass(frozen=True)
class EpisodeRecord:
    network: str
    ways: int
    shots: int
    fold: int
    accuracy: float  # fraction of the query objects classified right, after the last step
    support_objects: int
    query_objects: int
    steps: int
    final_loss: float  # mean training loss of the last epoch
    seconds: float
    classes: list[str]  # the episode's classes, in the order of its labels 0..ways-1


EPISODES_SCHEMA = pa.schema([
    ("network", pa.string()), ("ways", pa.int32()), ("shots", pa.int32()), ("fold", pa.int32()),
    ("accuracy", pa.float64()), ("support_objects", pa.int32()), ("query_objects", pa.int32()),
    ("steps", pa.int32()), ("final_loss", pa.float64()), ("seconds", pa.float64()),
    ("classes", pa.list_(pa.string())),
])


def write_episodes(out: Path, records: list[EpisodeRecord], metadata: dict) -> None:
    write_records(out / EPISODES_FILE, records, EPISODES_SCHEMA, metadata=metadata)


def read_episodes(directory: Path) -> list[EpisodeRecord]:
    return read_records(directory / EPISODES_FILE, EpisodeRecord)


def episodes_metadata(directory: Path) -> dict:
    return read_metadata(directory / EPISODES_FILE)
