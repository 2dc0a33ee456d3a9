"""The `finetune` artefact: one semantic-segmentation run per (init, label_fraction, seed).

    <artefact>/runs.parquet      one row per run: run, init, label_fraction, seed, epochs, final_val_miou,
                                 best_val_miou, repeat (0, or k for the k-th same-seed repeat of a run, which
                                 only measures drift), confusion (fixed_shape_tensor int64 [K, K], rows = true class,
                                 columns = predicted, on the validation scenes after the last epoch)
    <artefact>/history.parquet   one row per run and epoch: run, epoch, train_loss (null when every step since
                                 the previous epoch was skipped), val_miou, val_macc, seconds, skipped_steps
                                 (steps since the previous epoch without a labelled point on any worker: no
                                 optimiser step, training/finetuning/segmentation.py)
    <artefact>/runs/<run>/model.pt   backbone + head state dict of the last epoch

Schema metadata of runs.parquet: class_names (JSON list, K entries), label_unit ("scenes" or "points": what
label_fraction is a share of; "points_per_scene": label_fraction is a number of labelled points per scene), deterministic (JSON bool: trained in deterministic mode).
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
class RunResult:
    run: str
    init: str
    label_fraction: float
    seed: int
    epochs: int
    final_val_miou: float
    best_val_miou: float
    confusion: np.ndarray  # [K, K] int64
    repeat: int = 0  # 0: a run of the grid; k > 0: the k-th same-seed repeat of one (run-to-run drift)


@dataclass(frozen=True)
class EpochRecord:
    run: str
    epoch: int
    train_loss: float | None  # None: every step since the previous epoch was skipped
    val_miou: float
    val_macc: float
    seconds: float
    skipped_steps: int = 0  # 0 also in a history written before the column existed


RUNS_SCHEMA = pa.schema([
    ("run", pa.string()), ("init", pa.string()), ("label_fraction", pa.float64()), ("seed", pa.int32()),
    ("epochs", pa.int32()), ("final_val_miou", pa.float64()), ("best_val_miou", pa.float64()),
    ("repeat", pa.int32()),
])
HISTORY_SCHEMA = pa.schema([
    ("run", pa.string()), ("epoch", pa.int32()), ("train_loss", pa.float64()), ("val_miou", pa.float64()),
    ("val_macc", pa.float64()), ("seconds", pa.float64()), ("skipped_steps", pa.int32()),
])
TENSORS = {"confusion": np.int64}


def run_name(init: str, label_fraction: float, seed: int) -> str:
    return f"{init}-labels{label_fraction:g}-seed{seed}"


def write_runs(out: Path, results: list[RunResult], class_names: list[str], label_unit: str,
               deterministic: bool = False) -> None:
    write_records(out / RUNS_FILE, results, RUNS_SCHEMA, TENSORS,
                  {"class_names": class_names, "label_unit": label_unit, "deterministic": deterministic})


def write_history(out: Path, records: list[EpochRecord]) -> None:
    write_records(out / HISTORY_FILE, records, HISTORY_SCHEMA)


def read_runs(finetune_dir: Path) -> list[RunResult]:
    return read_records(finetune_dir / RUNS_FILE, RunResult, list(TENSORS))


def read_history(finetune_dir: Path) -> list[EpochRecord]:
    return read_records(finetune_dir / HISTORY_FILE, EpochRecord)


def runs_metadata(finetune_dir: Path) -> tuple[list[str], str]:
    """(class names, label unit) of the runs table."""
    metadata = read_metadata(finetune_dir / RUNS_FILE)
    return metadata["class_names"], metadata["label_unit"]


def runs_deterministic(finetune_dir: Path) -> bool:
    """Whether the runs were trained in deterministic mode (tables written before the flag existed: False)."""
    return bool(read_metadata(finetune_dir / RUNS_FILE).get("deterministic", False))


def model_path(finetune_dir: Path, run: str) -> Path:
    return finetune_dir / RUNS_DIR / run / MODEL_FILE
