"""One verdict rule for every comparison of two inits over seeds (issue 22): every report that compares inits
(evaluate, classify, detect, finetune_objects, fewshot, evaluate_objects) calls `compare` and renders its
result with `verdict_table`, so one rule and one wording serve them all (docs/methods.md, "Verdicts").

The rule, stated once:

    Welch's unequal-variance t-test (scipy.stats.ttest_ind with equal_var=False, two-sided) on the
    per-seed scores of the candidate and the baseline. p < 0.05 and the candidate's mean above the
    baseline's: `ahead`; p < 0.05 and below: `behind`; otherwise `unresolved`. Fewer than 2 scores on
    either side: `unresolved` without a test (a single seed has no spread to test a gap against).

NaN scores (undefined, e.g. an mIoU with no class to average) are left out before counting. When both sides
are constant scipy's t is ±inf for different means (p = 0: a verdict) and NaN for equal ones (unresolved).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from pix2point.evaluation.markdown import json_number, markdown_table, signed_points

ALPHA = 0.05  # two-sided significance level of the Welch test
MIN_SEEDS = 2  # per side; fewer leaves the comparison unresolved
Outcome = Literal["ahead", "behind", "unresolved"]
RULE = (f"Verdict: `ahead` / `behind` when the first of the pair scores higher / lower than the second with "
        f"p < {ALPHA:g} in Welch's t-test over {{samples}} (two-sided); otherwise, or with fewer than {MIN_SEEDS} "
        "{samples} on a side, `unresolved` (evaluation/verdict.py; docs/methods.md, Verdicts).")
VERDICT_HEADER = ["gap (points)", "spread ± (points)", "{samples}", "p", "verdict"]


@dataclass(frozen=True)
class Verdict:
    """A candidate init against a baseline init; scores and gaps in the scores' own unit (fractions here)."""

    gap: float  # mean candidate score minus mean baseline score; NaN when a side has no score
    candidate_std: float  # sample standard deviation over seeds (ddof 1); NaN for fewer than 2 seeds
    baseline_std: float
    candidate_seeds: int  # scores counted (NaN ones left out)
    baseline_seeds: int
    p_value: float  # Welch's two-sided p; NaN when not tested (fewer than MIN_SEEDS on a side) or undefined
    outcome: Outcome


def compare(candidate: Sequence[float], baseline: Sequence[float]) -> Verdict:
    """The verdict of `candidate` against `baseline`, one score per seed each (any order, any unit)."""
    first, second = _defined(candidate), _defined(baseline)
    gap = float(first.mean() - second.mean()) if len(first) and len(second) else math.nan
    p_value = math.nan
    if min(len(first), len(second)) >= MIN_SEEDS:
        with warnings.catch_warnings():  # constant sides: the docstring's ±inf / NaN, not a console warning
            warnings.simplefilter("ignore", RuntimeWarning)
            p_value = float(stats.ttest_ind(first, second, equal_var=False).pvalue)
    outcome: Outcome = "unresolved"
    if p_value < ALPHA:  # False for NaN
        outcome = "ahead" if gap > 0 else "behind"
    return Verdict(gap, _std(first), _std(second), len(first), len(second), p_value, outcome)


def verdict_cells(verdict: Verdict) -> list[str]:
    """The verdict's columns of VERDICT_HEADER, the scores being fractions (shown as percentage points)."""
    return [signed_points(verdict.gap), f"{_points(verdict.candidate_std)} / {_points(verdict.baseline_std)}",
            f"{verdict.candidate_seeds} / {verdict.baseline_seeds}", _p_text(verdict.p_value), f"**{verdict.outcome}**"]



def verdict_table(header: list[str], rows: list[tuple[list[str], Verdict]], samples: str = "seeds") -> str:
    """A Markdown table: the leading `header` columns (which comparison), then the verdict's columns; and
    the rule under it. `samples` names what the scores are taken over (seeds, folds)."""
    columns = [*header, *(name.format(samples=samples) for name in VERDICT_HEADER)]
    table = markdown_table(columns, [[*lead, *verdict_cells(verdict)] for lead, verdict in rows])
    return f"{table}\n\n{RULE.format(samples=samples)} Spread and {samples}: first init / second init."


def verdict_document(verdict: Verdict) -> dict:
    """The metrics.json entry (fractions; NaN as null)."""
    return {"gap": json_number(verdict.gap), "candidate_std": json_number(verdict.candidate_std),
            "baseline_std": json_number(verdict.baseline_std), "candidate_seeds": verdict.candidate_seeds,
            "baseline_seeds": verdict.baseline_seeds, "p_value": json_number(verdict.p_value),
            "verdict": verdict.outcome}


def _defined(scores: Sequence[float]) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    return values[~np.isnan(values)]


def _std(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) >= MIN_SEEDS else math.nan


def _points(std: float) -> str:
    return "–" if math.isnan(std) else f"{100 * std:.1f}"


def _p_text(p_value: float) -> str:
    if math.isnan(p_value):
        return "–"
    return "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"
