"""The finetuning results as a table: init x label fraction, aggregated over seeds, and the gain of pretraining.

Every figure is recomputed from the stored confusion matrices (pix2point.evaluation.segmentation_metrics),
so all runs are scored by one definition of mIoU whatever the finetune stage logged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from pix2point.evaluation.drift import Drift, repeated_run_drift
from pix2point.evaluation.segmentation_metrics import SegmentationScores, mean_of_defined, segmentation_scores
from pix2point.evaluation.verdict import Verdict, compare
from pix2point.io.finetune_table import RunResult

BASELINE_INIT = "scratch"
PRETRAINED_INIT = "pretrain"


@dataclass(frozen=True)
class ScoredRun:
    result: RunResult
    scores: SegmentationScores


@dataclass(frozen=True)
class CellSummary:
    """One (init, label fraction) cell: its runs' seeds aggregated."""

    init: str
    label_fraction: float
    seeds: tuple[int, ...]
    miou_mean: float
    miou_std: float  # sample standard deviation over seeds (ddof 1); NaN with a single seed
    mious: tuple[float, ...]  # per seed, in `seeds` order (NaN where undefined)
    mean_class_accuracy_mean: float
    iou_mean: np.ndarray  # [K] per class, mean over the seeds where the class is defined
    confusion: np.ndarray  # [K, K] summed over seeds

    @property
    def label(self) -> str:
        return f"{self.init} @ {self.label_fraction:g}"


def score_runs(runs: list[RunResult]) -> list[ScoredRun]:
    return [ScoredRun(run, segmentation_scores(run.confusion)) for run in runs]


def summarise_cells(scored: list[ScoredRun]) -> list[CellSummary]:
    """One summary per (init, label fraction), ordered by init (baseline first) then label fraction."""
    groups: dict[tuple[str, float], list[ScoredRun]] = defaultdict(list)
    for run in scored:
        groups[(run.result.init, run.result.label_fraction)].append(run)
    ordered = sorted(groups, key=lambda cell: (init_order(cell[0]), cell[1]))
    return [_summarise_cell(*cell, groups[cell]) for cell in ordered]


def finetune_drift(runs: list[RunResult]) -> Drift | None:
    """The recomputed mIoU of the run that has same-seed repeats (`repeat` > 0) and of each repeat, against
    the spread over seeds of the run's (init, label fraction) cell; None without repeats."""
    return repeated_run_drift(runs, lambda run: (run.init, run.label_fraction),
                              lambda run: segmentation_scores(run.confusion).miou)


def init_order(init: str) -> tuple[int, str]:
    """Sort key: the baseline first, then pretraining, then any other init by name."""
    rank = {BASELINE_INIT: 0, PRETRAINED_INIT: 1}
    return rank.get(init, 2), init


def pretraining_verdicts(cells: list[CellSummary]) -> dict[float, Verdict]:
    """Label fraction -> `pretrain` against `scratch` over seeds (evaluation/verdict.py; its gap is the
    difference of mean mIoU), where both were run."""
    by_cell = {(cell.init, cell.label_fraction): cell for cell in cells}
    fractions = sorted({cell.label_fraction for cell in cells})
    return {
        fraction: compare(by_cell[(PRETRAINED_INIT, fraction)].mious, by_cell[(BASELINE_INIT, fraction)].mious)
        for fraction in fractions
        if (PRETRAINED_INIT, fraction) in by_cell and (BASELINE_INIT, fraction) in by_cell
    }


def _summarise_cell(init: str, label_fraction: float, runs: list[ScoredRun]) -> CellSummary:
    runs = sorted(runs, key=lambda run: run.result.seed)
    seeds = tuple(run.result.seed for run in runs)
    if len(set(seeds)) != len(seeds):
        names = sorted(run.result.run for run in runs)
        raise ValueError(f"init {init!r} at label fraction {label_fraction:g} has two runs with the same seed: {names}")
    mious = np.array([run.scores.miou for run in runs])
    return CellSummary(
        init=init,
        label_fraction=label_fraction,
        seeds=seeds,
        miou_mean=float(mean_of_defined(mious)),
        miou_std=float(np.std(mious, ddof=1)) if len(mious) > 1 else float("nan"),
        mious=tuple(float(miou) for miou in mious),
        mean_class_accuracy_mean=float(mean_of_defined(np.array([run.scores.mean_class_accuracy for run in runs]))),
        iou_mean=mean_of_defined(np.stack([run.scores.iou for run in runs]), axis=0),
        confusion=np.sum([run.result.confusion for run in runs], axis=0),
    )
