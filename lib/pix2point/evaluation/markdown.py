"""Formatting shared by the reports: Markdown tables, percentages, signed gains, JSON-safe numbers."""

from __future__ import annotations

import math


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def percent(value: float) -> str:
    """A fraction in [0, 1] as percent with one decimal; NaN (undefined) as a dash."""
    return "–" if math.isnan(value) else f"{100 * value:.1f}"


def mean_and_spread(mean: float, std: float, count: int) -> str:
    """`mean ± std (n=count)` in percent; the spread is left out when undefined (a single seed)."""
    spread = "" if math.isnan(std) else f" ± {100 * std:.1f}"
    return f"{percent(mean)}{spread} (n={count})"


def signed_points(value: float) -> str:
    """A difference of fractions as signed percentage points."""
    # + 0.0 turns a rounded -0.0 (a gain of -1e-17) into +0.0
    return "–" if math.isnan(value) else f"{round(100 * value, 1) + 0.0:+.1f}"


def json_number(value: float) -> float | None:
    """NaN has no JSON spelling: it becomes null."""
    value = float(value)
    return None if math.isnan(value) else value
