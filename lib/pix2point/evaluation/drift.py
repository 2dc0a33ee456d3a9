"""Run-to-run drift in normal (non-deterministic) mode: the spread of one run repeated with the same seed,
params and data, next to the spread over seeds, so a reader can tell drift from effect.

In normal mode a repeat differs only through arithmetic whose order depends on thread timing
(MinkowskiEngine's kernel maps; see training/runtime/determinism.py); in deterministic mode repeats are
bit-identical and are not run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pix2point.evaluation.markdown import json_number, percent


@dataclass(frozen=True)
class Drift:
    run: str  # the repeated run
    scores: tuple[float, ...]  # its final score, then each repeat's, as fractions
    seed_std: float  # sample std over the seeds of the run's cell (NaN with one seed)

    @property
    def std(self) -> float:
        """Sample standard deviation over the repeats (the run included)."""
        return float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else math.nan


def measure_drift(run: str, scores: list[float], seed_scores: list[float]) -> Drift:
    """`scores`: the run's and its repeats' final scores; `seed_scores`: one per seed of its cell."""
    seed_std = float(np.std(seed_scores, ddof=1)) if len(seed_scores) > 1 else math.nan
    return Drift(run, tuple(scores), seed_std)


def repeated_run_drift(runs: Sequence[Any], cell_of: Callable[[Any], Hashable], score: Callable[[Any], float]
                       ) -> Drift | None:
    """The drift of the run that has same-seed repeats: `runs` carry `run`, `seed` and `repeat` (> 0 for a
    repeat); its score and each repeat's, against the spread over seeds of the runs in its cell
    (`cell_of(run)`, repeats left out). None without repeats."""
    repeats = sorted((run for run in runs if run.repeat > 0), key=lambda run: run.repeat)
    if not repeats:
        return None
    first = repeats[0]
    cell = [run for run in runs if run.repeat == 0 and cell_of(run) == cell_of(first)]
    original = next(run for run in cell if run.seed == first.seed)
    return measure_drift(original.run, [score(run) for run in (original, *repeats)], [score(run) for run in cell])


def drift_markdown(drift: Drift | None, deterministic: bool, score: str) -> str:
    """One paragraph for a report; `score` names what was repeated (e.g. "test accuracy")."""
    if deterministic:
        return ("Run-to-run drift: none. The stage ran in deterministic mode, where a rerun with the same params "
                "writes bit-identical tables and weights.")
    if drift is None or len(drift.scores) < 2:
        return "Run-to-run drift: not measured (`drift_repeats: 0`)."
    seeds = "one seed only, no spread over seeds" if math.isnan(drift.seed_std) else \
        f"against ± {100 * drift.seed_std:.2f} over seeds in its cell"
    values = ", ".join(percent(score) for score in drift.scores)
    return (f"Run-to-run drift (normal mode): run {drift.run} trained {len(drift.scores)} times with the same seed "
            f"and data gave {score} {values} %: ± {100 * drift.std:.2f} points (sample std), {seeds}. Differences "
            f"smaller than the drift are not effects; `deterministic: true` removes it.")


def drift_document(drift: Drift | None, deterministic: bool) -> dict:
    """The metrics.json entry."""
    if drift is None:
        return {"deterministic": deterministic, "run": None}
    return {"deterministic": deterministic, "run": drift.run, "scores": [json_number(s) for s in drift.scores],
            "std": json_number(drift.std), "seed_std": json_number(drift.seed_std)}
