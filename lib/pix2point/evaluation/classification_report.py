"""The classify stage's summary: accuracy per init x FIP mode x shots over seeds, epochs to a target accuracy,
and a verdict (evaluation/verdict.py) for each comparison: every variant against training the same network
from scratch end to end (Image2Point's baseline), and each inflated variant against the same FIP mode on
random weights (e.g. inflated + io against scratch + io: what the ImageNet weights add over random frozen
filters, issue 22).

Image2Point's claims (docs/methods.md) are read off these: few-shot gains of inflated+FIP over scratch, and
fewer training steps to reach a target accuracy.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2point.evaluation.drift import Drift, drift_document, drift_markdown, repeated_run_drift
from pix2point.evaluation.markdown import json_number, markdown_table, mean_and_spread, percent
from pix2point.evaluation.plots import plot_accuracy_curves
from pix2point.evaluation.verdict import Verdict, compare, verdict_document, verdict_table
from pix2point.io.classify_table import ClassifyEpoch, ClassifyRun

BASELINE = ("scratch", "all")  # Image2Point's baseline: the twin trained from random weights, nothing frozen
REPORT_FILE = "report.md"
METRICS_FILE = "metrics.json"
CURVES_FILE = "accuracy.png"


@dataclass(frozen=True)
class ClassifyCell:
    """One (init, fip, shots) cell with its seeds aggregated."""

    init: str
    fip: str
    shots: int | None
    seeds: tuple[int, ...]
    accuracy_mean: float  # test accuracy after the last epoch
    accuracy_std: float  # sample standard deviation over seeds; NaN with one seed
    accuracies: tuple[float, ...]  # per seed (in `seeds` order), test accuracy after the last epoch
    best_accuracy_mean: float
    epochs_to_target: tuple[int | None, ...]  # per seed: first epoch at or above the target, None if never
    trainable_parameters: int

    @property
    def variant(self) -> tuple[str, str]:
        return self.init, self.fip

    @property
    def shots_label(self) -> str:
        return shots_label(self.shots)

    @property
    def mean_epochs_to_target(self) -> float:
        """Mean over the seeds that reached the target; NaN when none did."""
        reached = [epochs for epochs in self.epochs_to_target if epochs is not None]
        return float(np.mean(reached)) if reached else math.nan


@dataclass(frozen=True)
class Comparison:
    """A variant against another (the scratch baseline, or its FIP mode on random weights) at one shot count."""

    variant: tuple[str, str]
    shots: int | None
    verdict: Verdict  # the variant's final test accuracy over seeds against the other's
    baseline_epochs_to_target: float
    variant_epochs_to_target: float
    baseline: tuple[str, str] = BASELINE

    @property
    def accuracy_gain(self) -> float:
        """Variant minus baseline, mean final test accuracy."""
        return self.verdict.gap

    @property
    def speedup(self) -> float:
        """How many times fewer epochs the variant needs to reach the target (NaN if either never does)."""
        return self.baseline_epochs_to_target / self.variant_epochs_to_target


def shots_label(shots: int | None) -> str:
    return "all" if shots is None else str(shots)


def epochs_to_reach(records: list[ClassifyEpoch], target: float) -> int | None:
    """The first epoch whose test accuracy is at least `target`."""
    for record in sorted(records, key=lambda record: record.epoch):
        if record.test_accuracy >= target:
            return record.epoch
    return None


def summarise(runs: list[ClassifyRun], history: list[ClassifyEpoch], target: float) -> list[ClassifyCell]:
    """Cells ordered by shots (few first, all last), then the baseline first, then by init and FIP mode."""
    records = defaultdict(list)
    for record in history:
        records[record.run].append(record)
    groups: dict[tuple[str, str, int | None], list[ClassifyRun]] = defaultdict(list)
    for run in runs:
        groups[(run.init, run.fip, run.shots)].append(run)
    cells = [_cell(init, fip, shots, members, records, target) for (init, fip, shots), members in groups.items()]
    return sorted(cells, key=lambda cell: (_shots_order(cell.shots), cell.variant != BASELINE, cell.variant))


def compare_with_baseline(cells: list[ClassifyCell]) -> list[Comparison]:
    """Every non-baseline variant against the baseline at the same shots, where both ran."""
    baseline = {cell.shots: cell for cell in cells if cell.variant == BASELINE}
    return [_comparison(cell, baseline[cell.shots]) for cell in cells
            if cell.variant != BASELINE and cell.shots in baseline]


def compare_with_random_weights(cells: list[ClassifyCell]) -> list[Comparison]:
    """Each inflated variant against the same FIP mode and shots from random weights (the control that
    isolates the 2D weights: with `io` both train only stem and classifier on a frozen trunk), where both
    ran and the control is not the baseline already compared with."""
    by_key = {(cell.init, cell.fip, cell.shots): cell for cell in cells}
    return [_comparison(cell, control) for cell in cells
            if cell.init == "inflated" and (control := by_key.get(("scratch", cell.fip, cell.shots))) is not None
            and control.variant != BASELINE]


def _comparison(cell: ClassifyCell, other: ClassifyCell) -> Comparison:
    return Comparison(cell.variant, cell.shots, compare(cell.accuracies, other.accuracies),
                      other.mean_epochs_to_target, cell.mean_epochs_to_target, other.variant)


def write_report(out: Path, runs: list[ClassifyRun], history: list[ClassifyEpoch], target: float,
                 network: str, deterministic: bool = False, learning_rates: dict[str, float] | None = None) -> dict:
    """report.md, metrics.json and accuracy.png in `out`; returns the manifest's small metrics. Drift repeats
    (runs with `repeat` > 0) only feed the drift paragraph, never the cells."""
    grid = [run for run in runs if run.repeat == 0]
    grid_history = [record for record in history if record.run in {run.run for run in grid}]
    drift = run_drift(runs)
    cells = summarise(grid, grid_history, target)
    comparisons = compare_with_baseline(cells) + compare_with_random_weights(cells)
    plot_accuracy_curves(grid_history, grid, out / CURVES_FILE)
    (out / REPORT_FILE).write_text(report_markdown(cells, comparisons, target, network, drift, deterministic,
                                                   learning_rates))
    document = {**metrics_document(cells, comparisons, target), "drift": drift_document(drift, deterministic)}
    (out / METRICS_FILE).write_text(json.dumps(document, indent=2, allow_nan=False))
    return {"runs": len(runs), "accuracy": {_cell_key(cell): json_number(cell.accuracy_mean) for cell in cells},
            "verdict": {f"{_variant_text(c.variant)} vs {_variant_text(c.baseline)} shots {shots_label(c.shots)}":
                        c.verdict.outcome for c in comparisons}}


def run_drift(runs: list[ClassifyRun]) -> Drift | None:
    """The repeated run's final accuracy and its repeats', against its cell's spread over seeds."""
    return repeated_run_drift(runs, lambda run: (run.init, run.fip, run.shots), lambda run: run.final_accuracy)


def report_markdown(cells: list[ClassifyCell], comparisons: list[Comparison], target: float, network: str,
                    drift: Drift | None = None, deterministic: bool = False,
                    learning_rates: dict[str, float] | None = None) -> str:
    """`learning_rates`: FIP mode -> the peak learning rate its runs trained at (left out when None)."""
    header = ["init", "FIP", "shots", "test accuracy %", "best %", f"epochs to {percent(target)} %", "trainable params"]
    rows = [[cell.init, cell.fip, cell.shots_label, mean_and_spread(cell.accuracy_mean, cell.accuracy_std, len(cell.seeds)),
             percent(cell.best_accuracy_mean), _epochs_text(cell), f"{cell.trainable_parameters:,}"] for cell in cells]
    parts = [
        f"# Image2Point object classification ({network} twin)",
        "Test accuracy after the last epoch, mean ± sample std over seeds. Every run trains the same number of "
        "steps; shots = training objects per class. Epochs to target: mean over the seeds that reached it "
        "(reached/seeds)." + _learning_rates_text(learning_rates),
        markdown_table(header, rows),
        drift_markdown(drift, deterministic, "test accuracy"),
        "## Verdicts: final test accuracy",
        "Each variant against the scratch baseline (random weights, everything trains), and each inflated "
        "variant against the same FIP mode on random weights, which shows what the 2D ImageNet weights add "
        "over random frozen filters.",
        _verdicts(comparisons, target),
        f"![test accuracy per epoch]({CURVES_FILE})",
    ]
    return "\n\n".join(parts) + "\n"


def metrics_document(cells: list[ClassifyCell], comparisons: list[Comparison], target: float) -> dict:
    return {
        "target_accuracy": target,
        "cells": [{
            "init": cell.init, "fip": cell.fip, "shots": cell.shots, "seeds": list(cell.seeds),
            "accuracy_mean": json_number(cell.accuracy_mean), "accuracy_std": json_number(cell.accuracy_std),
            "best_accuracy_mean": json_number(cell.best_accuracy_mean),
            "epochs_to_target": list(cell.epochs_to_target), "trainable_parameters": cell.trainable_parameters,
        } for cell in cells],
        "comparisons": [{
            "init": comparison.variant[0], "fip": comparison.variant[1], "shots": comparison.shots,
            "against": {"init": comparison.baseline[0], "fip": comparison.baseline[1]},
            "accuracy_gain": json_number(comparison.accuracy_gain),
            "epochs_to_target_speedup": json_number(comparison.speedup), **verdict_document(comparison.verdict),
        } for comparison in comparisons],
    }


def _cell(init: str, fip: str, shots: int | None, runs: list[ClassifyRun], records: dict, target: float) -> ClassifyCell:
    runs = sorted(runs, key=lambda run: run.seed)
    accuracy = np.array([run.final_accuracy for run in runs])
    return ClassifyCell(
        init=init, fip=fip, shots=shots, seeds=tuple(run.seed for run in runs),
        accuracy_mean=float(accuracy.mean()),
        accuracy_std=float(accuracy.std(ddof=1)) if len(runs) > 1 else math.nan,
        accuracies=tuple(float(value) for value in accuracy),
        best_accuracy_mean=float(np.mean([run.best_accuracy for run in runs])),
        epochs_to_target=tuple(epochs_to_reach(records[run.run], target) for run in runs),
        trainable_parameters=runs[0].trainable_parameters,
    )


def _verdicts(comparisons: list[Comparison], target: float) -> str:
    if not comparisons:
        return "No variant ran beside the scratch baseline or its random-weights control at the same shots."
    rows = [([shots_label(c.shots), _variant_text(c.variant), _variant_text(c.baseline), _speed_text(c.speedup, target)],
             c.verdict) for c in sorted(comparisons, key=lambda c: (_shots_order(c.shots), c.baseline != BASELINE))]
    return verdict_table(["shots", "variant", "against", "epochs to target"], rows)


def _learning_rates_text(learning_rates: dict[str, float] | None) -> str:
    if not learning_rates:
        return ""
    rates = ", ".join(f"FIP {fip} {rate:g}" for fip, rate in learning_rates.items())
    return f" Peak learning rate (cosine-annealed to 0): {rates}."


def _variant_text(variant: tuple[str, str]) -> str:
    return "/".join(variant)


def _speed_text(speedup: float, target: float) -> str:
    if math.isnan(speedup):
        return "epochs-to-target not comparable (a side never reached it)"
    if round(speedup, 1) == 1.0:
        return f"reaches {percent(target)} % as fast"
    if speedup > 1:
        return f"reaches {percent(target)} % in {speedup:.1f}x fewer epochs"
    return f"needs {1 / speedup:.1f}x more epochs to reach {percent(target)} %"


def _epochs_text(cell: ClassifyCell) -> str:
    reached = sum(epochs is not None for epochs in cell.epochs_to_target)
    mean = cell.mean_epochs_to_target
    return f"{'never' if math.isnan(mean) else f'{mean:.1f}'} ({reached}/{len(cell.seeds)})"


def _cell_key(cell: ClassifyCell) -> str:
    return f"{cell.init}/{cell.fip}/shots{cell.shots_label}"


def _shots_order(shots: int | None) -> float:
    return math.inf if shots is None else shots
