"""The `detect` artefact: one 3D-detection run per (init, label_fraction, seed), scored on the validation scenes.

    <artefact>/runs.parquet      one row per run: run, init, label_fraction, seed, evaluations, resumed_from_step,
                                 map25, map50 (after the last step), best_map25, ap25 and ap50 (list<double>,
                                 one per class, NaN where the validation scenes have no box of the class),
                                 repeat (> 0: a same-seed rerun of the first run, measuring drift)
    <artefact>/trials.parquet    one row per run: when it started and finished, the step it resumed from
    <artefact>/history.parquet   one row per run and evaluation: run, step, train_loss, val_map25, val_map50, seconds,
                                 loss_vote, loss_objectness, loss_centre, loss_size, loss_class (the loss's
                                 terms, training/finetuning/detection_loss.py; like train_loss, means over the steps since
                                 the previous evaluation and over workers), val_recall25 (recall at IoU 0.25
                                 after the last detection, mean over the classes with ground truth); the
                                 per-step values of every term are in the run's TensorBoard curves (train/<term>)
    <artefact>/runs/<run>/model.pt   backbone + head state dict after the last step
    <artefact>/report.md         scratch vs pretrained mAP per label fraction, mean ± std over seeds

Schema metadata of runs.parquet: class_names (JSON list).
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
REPORT_FILE = "report.md"

RUNS_SCHEMA = pa.schema([
    ("run", pa.string()), ("init", pa.string()), ("label_fraction", pa.float64()), ("seed", pa.int32()),
    ("evaluations", pa.int32()), ("resumed_from_step", pa.int32()), ("map25", pa.float64()), ("map50", pa.float64()),
    ("best_map25", pa.float64()), ("ap25", pa.list_(pa.float64())), ("ap50", pa.list_(pa.float64())),
    ("repeat", pa.int32()),
])
HISTORY_SCHEMA = pa.schema([
    ("run", pa.string()), ("step", pa.int32()), ("train_loss", pa.float64()), ("val_map25", pa.float64()),
    ("val_map50", pa.float64()), ("seconds", pa.float64()), ("loss_vote", pa.float64()),
    ("loss_objectness", pa.float64()), ("loss_centre", pa.float64()), ("loss_size", pa.float64()),
    ("loss_class", pa.float64()), ("val_recall25", pa.float64()),
])


@dataclass(frozen=True)
class DetectRunResult:
    run: str
    init: str
    label_fraction: float
    seed: int
    evaluations: int
    resumed_from_step: int  # 0 unless the run continued from a checkpoint of a killed attempt
    map25: float
    map50: float
    best_map25: float
    ap25: list[float]
    ap50: list[float]
    repeat: int = 0  # > 0: a same-seed rerun of another run (normal mode), to measure drift


@dataclass(frozen=True)
class DetectEvaluation:
    run: str
    step: int
    train_loss: float
    val_map25: float
    val_map50: float
    seconds: float
    # None only in a history written before these columns existed
    loss_vote: float | None = None
    loss_objectness: float | None = None
    loss_centre: float | None = None
    loss_size: float | None = None
    loss_class: float | None = None
    val_recall25: float | None = None


def write_runs(out: Path, results: list[DetectRunResult], class_names: list[str]) -> None:
    write_records(out / RUNS_FILE, results, RUNS_SCHEMA, metadata={"class_names": class_names})


def write_history(out: Path, records: list[DetectEvaluation]) -> None:
    write_records(out / HISTORY_FILE, records, HISTORY_SCHEMA)


def read_runs(detect_dir: Path) -> list[DetectRunResult]:
    return read_records(detect_dir / RUNS_FILE, DetectRunResult)


def read_history(detect_dir: Path) -> list[DetectEvaluation]:
    return read_records(detect_dir / HISTORY_FILE, DetectEvaluation)


def run_class_names(detect_dir: Path) -> list[str]:
    return read_metadata(detect_dir / RUNS_FILE)["class_names"]


def ap_array(values: list[float]) -> np.ndarray:
    """Per-class AP as stored (None for NaN after a round trip) -> float array with NaN."""
    return np.array([np.nan if v is None else v for v in values], np.float64)
