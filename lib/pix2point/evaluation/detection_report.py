"""The detect stage's report: mAP@0.25 and mAP@0.5 per (init, label fraction), mean ± std over seeds, and the
verdict (evaluation/verdict.py) of pretrained against scratch on mAP@0.25, PPKT's headline metric."""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2point.evaluation.drift import Drift, drift_markdown, repeated_run_drift
from pix2point.evaluation.markdown import json_number, markdown_table, mean_and_spread, percent
from pix2point.evaluation.verdict import Verdict, compare, verdict_document, verdict_table
from pix2point.evaluation.segmentation_summary import BASELINE_INIT, PRETRAINED_INIT, init_order
from pix2point.io.detect_table import DetectRunResult, ap_array


@dataclass(frozen=True)
class DetectCell:
    init: str
    label_fraction: float
    seeds: tuple[int, ...]
    map25: np.ndarray  # [seeds] final mAP@0.25 of each run
    map50: np.ndarray
    ap25_mean: np.ndarray  # [K] per class over seeds, NaN where the class has no validation box

    @staticmethod
    def spread(values: np.ndarray) -> tuple[float, float]:
        """(mean, sample std with ddof 1; NaN for one seed)."""
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")

    def as_metrics(self) -> dict:
        (m25, s25), (m50, s50) = self.spread(self.map25), self.spread(self.map50)
        return {"init": self.init, "label_fraction": self.label_fraction, "seeds": list(self.seeds),
                "map25_mean": json_number(m25), "map25_std": json_number(s25),
                "map50_mean": json_number(m50), "map50_std": json_number(s50)}


def summarise(results: list[DetectRunResult]) -> list[DetectCell]:
    """One cell per (init, label fraction), scratch first, then by label fraction."""
    groups: dict[tuple[str, float], list[DetectRunResult]] = defaultdict(list)
    for result in results:
        groups[(result.init, result.label_fraction)].append(result)
    cells = []
    for init, fraction in sorted(groups, key=lambda cell: (init_order(cell[0]), cell[1])):
        runs = sorted(groups[(init, fraction)], key=lambda r: r.seed)
        with warnings.catch_warnings():  # a class without validation boxes is NaN in every run
            warnings.simplefilter("ignore", RuntimeWarning)
            ap25 = np.nanmean(np.stack([ap_array(r.ap25) for r in runs]), axis=0)
        cells.append(DetectCell(init, fraction, tuple(r.seed for r in runs), np.array([r.map25 for r in runs]),
                                np.array([r.map50 for r in runs]), ap25))
    return cells


def pretraining_verdicts(cells: list[DetectCell]) -> dict[float, tuple[Verdict, float]]:
    """Label fraction -> (pretrained against scratch on final mAP@0.25 over seeds, the mAP@0.5 gap), where
    both inits ran."""
    by_cell = {(cell.init, cell.label_fraction): cell for cell in cells}
    verdicts = {}
    for fraction in sorted({cell.label_fraction for cell in cells}):
        scratch, pretrained = by_cell.get((BASELINE_INIT, fraction)), by_cell.get((PRETRAINED_INIT, fraction))
        if scratch and pretrained:
            verdicts[fraction] = (compare(pretrained.map25, scratch.map25),
                                  float(pretrained.map50.mean() - scratch.map50.mean()))
    return verdicts


def verdicts_metrics(cells: list[DetectCell]) -> dict:
    """The manifest's entry: label fraction -> the mAP@0.25 verdict's document and the mAP@0.5 gap."""
    return {f"{fraction:g}": {**verdict_document(verdict), "map50_gap": json_number(map50_gap)}
            for fraction, (verdict, map50_gap) in pretraining_verdicts(cells).items()}


def _verdicts(cells: list[DetectCell]) -> str:
    """The mAP@0.25 verdicts (mAP@0.5's means are in the summary table and its gap in the manifest)."""
    rows = [([f"{fraction:g}", f"{PRETRAINED_INIT} vs {BASELINE_INIT}, mAP@0.25"], verdict)
            for fraction, (verdict, _) in pretraining_verdicts(cells).items()]
    if not rows:
        return "No label fraction has both inits."
    return verdict_table(["label fraction", "comparison"], rows)


def detect_drift(results: list[DetectRunResult]) -> Drift | None:
    """mAP@0.25 of the run with same-seed repeats and of each repeat, against its cell's spread over seeds."""
    return repeated_run_drift(results, lambda r: (r.init, r.label_fraction), lambda r: r.map25)


def write_report(path: Path, cells: list[DetectCell], results: list[DetectRunResult], class_names: list[str],
                 deterministic: bool = False) -> None:
    """`cells` from the grid's runs; `results` all runs, drift repeats (repeat > 0) included, which feed only
    the drift paragraph and the run list."""
    summary = markdown_table(
        ["init", "label fraction", "mAP@0.25 (%)", "mAP@0.5 (%)"],
        [[cell.init, f"{cell.label_fraction:g}", mean_and_spread(*cell.spread(cell.map25), len(cell.seeds)),
          mean_and_spread(*cell.spread(cell.map50), len(cell.seeds))] for cell in cells])
    present = [k for k in range(len(class_names)) if any(not np.isnan(cell.ap25_mean[k]) for cell in cells)]
    per_class = markdown_table(
        ["init @ label fraction", *(class_names[k] for k in present)],
        [[f"{cell.init} @ {cell.label_fraction:g}", *(percent(cell.ap25_mean[k]) for k in present)] for cell in cells])
    runs = markdown_table(
        ["run", "mAP@0.25", "mAP@0.5", "best mAP@0.25", "evaluations", "resumed from step"],
        [[r.run, percent(r.map25), percent(r.map50), percent(r.best_map25), str(r.evaluations),
          str(r.resumed_from_step)] for r in results])
    text = "\n\n".join([
        "# 3D detection: scratch vs pretrained backbone",
        "VoteNet's evaluation on the validation scenes (per-class VOC AP, axis-aligned IoU) after each run's "
        "last step; mean ± sample std over seeds.",
        summary,
        drift_markdown(detect_drift(results), deterministic, "validation mAP@0.25"),
        "## Pretrained against scratch: verdict on mAP@0.25",
        _verdicts(cells),
        "## AP@0.25 per class (%, mean over seeds; classes with validation boxes)",
        per_class,
        "## Runs",
        runs,
    ])
    path.write_text(text + "\n")
