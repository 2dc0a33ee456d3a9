"""A training stage's grid of runs and its drift repeats; light (no torch), so stage modules can build it.

Normal (non-deterministic) mode adds same-seed repeats of the grid's first run, whose spread is the
run-to-run drift the reports print next to the spread over seeds (evaluation/drift.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar

from pix2point.io.finetune_table import run_name

Run = TypeVar("Run")  # a frozen dataclass with `name` and `repeat` fields


@dataclass(frozen=True)
class RunSpec:
    """One run of a scene-level grid (finetune, detect)."""

    name: str
    init: str  # "scratch" or "pretrain"
    label_fraction: float
    seed: int
    repeat: int = 0  # > 0: a same-seed rerun of another run, to measure drift


def with_drift_repeats(grid: tuple[Run, ...], repeats: int, deterministic: bool) -> tuple[Run, ...]:
    """`grid`, then (normal mode only) `repeats` reruns of its first run, named `<first>-repeat<k>`."""
    if deterministic or not grid:  # bit-identical reruns measure nothing
        return grid
    first = grid[0]
    return grid + tuple(replace(first, name=f"{first.name}-repeat{k}", repeat=k) for k in range(1, repeats + 1))


def scene_runs(inits: list[str], label_fractions: list[float], seeds: list[int], drift_repeats: int,
               deterministic: bool) -> tuple[RunSpec, ...]:
    """Label fraction outermost, then init, then seed; the drift repeats last."""
    grid = tuple(RunSpec(run_name(init, fraction, seed), init, fraction, seed)
                 for fraction in label_fractions for init in inits for seed in seeds)
    return with_drift_repeats(grid, drift_repeats, deterministic)
