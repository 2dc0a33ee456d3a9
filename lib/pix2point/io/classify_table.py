"""The `classify` artefact: one object-classification run per (init, FIP mode, shots, seed).

    <artefact>/runs.parquet      one row per run: run, init (scratch | inflated), fip (io | iobn | all),
                                 shots (int32 per class; null = the whole training split), seed,
                                 train_objects, trainable_parameters, frozen_parameters, epochs,
                                 final_accuracy, best_accuracy, seconds, repeat (0, or k for the k-th same-seed
                                 repeat of a run, which only measures drift), confusion (fixed_shape_tensor
                                 int64 [K, K] on the test split after the last epoch; rows = true class)
    <artefact>/history.parquet   one row per run and epoch: run, epoch, step, train_loss, test_accuracy, seconds
    <artefact>/report.md, metrics.json, accuracy.png   the summary (evaluation/classification_report.py)
    <artefact>/runs/<run>/model.pt   the last epoch's state dict, only with `save_models`

Schema metadata of runs.parquet: class_names (JSON list, K entries), network (the 2D architecture whose
twin is trained), epoch_steps (optimiser steps per epoch, the same for every run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pix2point.io.arrow import read_metadata
from pix2point.io.records import read_records, write_records

RUNS_FILE = "runs.parquet"
HISTORY_FILE = "history.parquet"
RUNS_DIR = "runs"
MODEL_FILE = "model.pt"


@dataclass(frozen=True)
class ClassifyRun:
    run: str
    init: str
    fip: str
    shots: int | None  # per class; None: the whole training split
    seed: int
    train_objects: int
    trainable_parameters: int
    frozen_parameters: int
    epochs: int
    final_accuracy: float
    best_accuracy: float
    seconds: float
    confusion: np.ndarray  # [K, K] int64
    repeat: int = 0  # 0: a run of the grid; k > 0: its k-th same-seed repeat (run-to-run drift)


@dataclass(frozen=True)
class ClassifyEpoch:
    run: str
    epoch: int
    step: int
    train_loss: float
    test_accuracy: float
    seconds: float


def run_name(init: str, fip: str, shots: int | None, seed: int) -> str:
    return f"{init}-{fip}-shots{'all' if shots is None else shots}-seed{seed}"


RUNS_SCHEMA = pa.schema([
    ("run", pa.string()), ("init", pa.string()), ("fip", pa.string()), ("shots", pa.int32()),
    ("seed", pa.int32()), ("train_objects", pa.int32()), ("trainable_parameters", pa.int64()),
    ("frozen_parameters", pa.int64()), ("epochs", pa.int32()), ("final_accuracy", pa.float64()),
    ("best_accuracy", pa.float64()), ("seconds", pa.float64()), ("repeat", pa.int32()),
])
HISTORY_SCHEMA = pa.schema([
    ("run", pa.string()), ("epoch", pa.int32()), ("step", pa.int32()), ("train_loss", pa.float64()),
    ("test_accuracy", pa.float64()), ("seconds", pa.float64()),
])


TENSORS = {"confusion": np.int64}


def write_runs(out: Path, runs: list[ClassifyRun], class_names: list[str], network: str, epoch_steps: int) -> None:
    write_records(out / RUNS_FILE, runs, RUNS_SCHEMA, TENSORS,
                  {"class_names": class_names, "network": network, "epoch_steps": epoch_steps})


def write_history(out: Path, epochs: list[ClassifyEpoch]) -> None:
    write_records(out / HISTORY_FILE, epochs, HISTORY_SCHEMA)


def read_runs(classify_dir: Path) -> list[ClassifyRun]:
    return read_records(classify_dir / RUNS_FILE, ClassifyRun, list(TENSORS))


def read_history(classify_dir: Path) -> list[ClassifyEpoch]:
    return read_records(classify_dir / HISTORY_FILE, ClassifyEpoch)


def runs_metadata(classify_dir: Path) -> tuple[list[str], str, int]:
    """(class names, network, epoch steps) of the runs table."""
    metadata = read_metadata(classify_dir / RUNS_FILE)
    return metadata["class_names"], metadata["network"], int(metadata["epoch_steps"])


def model_path(classify_dir: Path, run: str) -> Path:
    return classify_dir / RUNS_DIR / run / MODEL_FILE
