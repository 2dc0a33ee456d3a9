"""The fewshot summary: accuracy on the query objects, mean ± std over folds, per network x N-way x K-shot (the
table Point-BERT and Point-MAE report for ModelNet40), and each network against its scratch baseline per
setting, with a verdict over the folds (evaluation/verdict.py: the folds are the independent episodes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2point.evaluation.markdown import json_number, markdown_table, mean_and_spread
from pix2point.evaluation.verdict import Verdict, compare, verdict_document, verdict_table
from pix2point.io.fewshot_table import EpisodeRecord

REPORT_FILE = "report.md"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class Cell:
    network: str
    ways: int
    shots: int
    mean: float  # accuracy over folds, a fraction
    std: float  # sample standard deviation over folds (ddof 1); NaN for one fold
    folds: int
    accuracies: tuple[float, ...] = ()  # per fold, in the order of the records

    @property
    def setting(self) -> str:
        return f"{self.ways}-way {self.shots}-shot"


def summarize(records: list[EpisodeRecord]) -> list[Cell]:
    """One cell per (network, ways, shots), in the order the records first name them."""
    groups: dict[tuple[str, int, int], list[float]] = {}
    for record in records:
        groups.setdefault((record.network, record.ways, record.shots), []).append(record.accuracy)
    return [Cell(network, ways, shots, float(np.mean(values)),
                 float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"), len(values), tuple(values))
            for (network, ways, shots), values in groups.items()]


def baseline_verdicts(cells: list[Cell], baselines: dict[str, str]) -> list[tuple[Cell, Cell, Verdict]]:
    """(cell, its baseline's cell in the same setting, the verdict over folds) wherever both ran."""
    by_key = {(cell.network, cell.ways, cell.shots): cell for cell in cells}
    pairs = [(cell, by_key.get((baselines[cell.network], cell.ways, cell.shots))) for cell in cells
             if cell.network in baselines]
    return [(cell, baseline, compare(cell.accuracies, baseline.accuracies)) for cell, baseline in pairs if baseline]


def write_report(out: Path, records: list[EpisodeRecord], baselines: dict[str, str], queries: int,
                 training: str) -> dict[str, float]:
    """report.md and metrics.json from the episodes; `baselines` maps a network to the scratch network its gain
    is measured against; `training` says how long each episode trained ("150 epochs"). Returns the flat metrics (mean accuracy per cell) for the run summary."""
    cells = summarize(records)
    settings = list(dict.fromkeys((cell.ways, cell.shots) for cell in cells))
    networks = list(dict.fromkeys(cell.network for cell in cells))
    by_key = {(cell.network, cell.ways, cell.shots): cell for cell in cells}
    header = ["network", *(f"{ways}-way {shots}-shot" for ways, shots in settings)]
    rows = [[network, *(_cell_text(by_key.get((network, *setting))) for setting in settings)] for network in networks]
    verdicts = baseline_verdicts(cells, baselines)
    lines = [
        "# Few-shot classification (N-way K-shot)",
        f"Per episode a fresh network for N classes is fine-tuned end to end for {training} on the N x K support "
        f"objects (train split) and scored on {queries} query objects per class (test split); accuracy in %, "
        "mean ± std over folds (n = folds).",
        markdown_table(header, rows),
    ]
    if verdicts:
        rows = [([cell.setting, cell.network, baseline.network], verdict) for cell, baseline, verdict in verdicts]
        lines += ["## Against the scratch baseline: query accuracy",
                  verdict_table(["setting", "network", "against"], rows, samples="folds")]
    (out / REPORT_FILE).write_text("\n\n".join(lines) + "\n")
    (out / METRICS_FILE).write_text(json.dumps({"cells": [
        {"network": cell.network, "ways": cell.ways, "shots": cell.shots, "mean": json_number(cell.mean),
         "std": json_number(cell.std), "folds": cell.folds} for cell in cells],
        "comparisons": [{"network": cell.network, "against": baseline.network, "ways": cell.ways, "shots": cell.shots,
                         **verdict_document(verdict)} for cell, baseline, verdict in verdicts]}, indent=2))
    return {**{f"accuracy_{cell.network}_{cell.ways}way_{cell.shots}shot": round(cell.mean, 4) for cell in cells},
            **{f"verdict_{cell.network}_{cell.ways}way_{cell.shots}shot": verdict.outcome
               for cell, _, verdict in verdicts}}


def _cell_text(cell: Cell | None) -> str:
    return "–" if cell is None else mean_and_spread(cell.mean, cell.std, cell.folds)

