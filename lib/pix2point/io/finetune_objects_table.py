"""The `finetune_objects` artefact: one Point-M2AE fine-tuning run per (init, seed).

    <artefact>/runs.parquet      one row per run: run, init (scratch | pretrain_mae | pretrain_i2p_mae), seed,
                                 repeat (0, or k for the k-th same-seed repeat of a run, which only measures
                                 drift), train_objects, epochs, final_accuracy (test split, last epoch),
                                 best_accuracy and best_epoch (the best evaluated epoch: chosen on the test
                                 split, as the reference's ckpt-best), vote_accuracy (null with voting 0),
                                 votes, seconds, confusion (fixed_shape_tensor int64 [K, K] after the last
                                 epoch, no voting; rows = true class)
    <artefact>/history.parquet   one row per run and evaluated epoch: run, epoch, step, train_loss,
                                 test_accuracy, seconds (the classify stage's history contract)
    <artefact>/trials.parquet    each run's start, end and resumed-from step (io/trials_table.py)
    <artefact>/report.md, metrics.json, accuracy.png   the summary (evaluation/finetune_objects_report.py)
    <artefact>/runs/<run>/model.pt   the last epoch's state dict (encoder + head), only with `save_models`

Schema metadata of runs.parquet: class_names (JSON list, K entries), encoder (the fine-tuned
PointM2AESpec, with the fine-tuning's group sizes), deterministic (JSON bool).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pix2point.io.arrow import read_metadata
from pix2point.io.classify_table import MODEL_FILE, RUNS_DIR, TENSORS
from pix2point.io.records import read_records, write_records

RUNS_FILE = "runs.parquet"


@dataclass(frozen=True)
class FinetuneObjectsRun:
    run: str
    init: str
    seed: int
    repeat: int  # 0: a run of the grid; k > 0: its k-th same-seed repeat (run-to-run drift)
    train_objects: int
    epochs: int
    final_accuracy: float
    best_accuracy: float
    best_epoch: int
    vote_accuracy: float | None  # None without voting
    votes: int
    seconds: float
    confusion: np.ndarray  # [K, K] int64


RUNS_SCHEMA = pa.schema([
    ("run", pa.string()), ("init", pa.string()), ("seed", pa.int32()), ("repeat", pa.int32()),
    ("train_objects", pa.int32()), ("epochs", pa.int32()), ("final_accuracy", pa.float64()),
    ("best_accuracy", pa.float64()), ("best_epoch", pa.int32()), ("vote_accuracy", pa.float64()),
    ("votes", pa.int32()), ("seconds", pa.float64()),
])


def run_name(init: str, seed: int) -> str:
    return f"{init}-seed{seed}"


def write_runs(out: Path, runs: list[FinetuneObjectsRun], class_names: list[str], encoder: dict,
               deterministic: bool) -> None:
    write_records(out / RUNS_FILE, runs, RUNS_SCHEMA, TENSORS,
                  {"class_names": class_names, "encoder": encoder, "deterministic": deterministic})


def read_runs(directory: Path) -> list[FinetuneObjectsRun]:
    return read_records(directory / RUNS_FILE, FinetuneObjectsRun, list(TENSORS))


def runs_metadata(directory: Path) -> dict:
    return read_metadata(directory / RUNS_FILE)


def model_path(directory: Path, run: str) -> Path:
    return directory / RUNS_DIR / run / MODEL_FILE
