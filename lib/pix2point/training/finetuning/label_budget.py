"""Which labels a limited-label finetuning run keeps: ScanNet's data-efficient benchmark and plain fractions.

The data-efficient benchmark of Contrastive Scene Contexts (CSC, Hou et al. 2021), as Pointcept runs it,
has two protocols: limited scene reconstructions (1, 5, 10 or 20 % of the training scenes, every label of
each kept scene) and limited annotations (20, 50, 100 or 200 labelled points in every training scene).
CSC ships fixed lists for its draws; here they are drawn from a seed, reproducibly:

- scenes: one permutation of the sorted training scenes per seed; a budget keeps its first
  ceil(fraction x scenes) (at least one), so a larger budget keeps a superset of a smaller one.
- points per scene: one permutation of a scene's labelled points per (seed, scene name); a budget of k
  keeps its first k (all, when the scene has fewer), so budgets nest and a scene's draw does not depend on
  which other scenes are loaded or in what order. Only labelled points are drawn: a budget counts
  annotations, and an unlabelled point carries none.
- a fraction of points: every labelled point is kept with probability `fraction`, drawn per (seed, scene).
"""

from __future__ import annotations

import math
import zlib
from typing import Literal

import numpy as np

from pix2point.io.scenes_table import IGNORE_LABEL

# What a run's label budget counts: a share of the training scenes, a share of each scene's points, or a
# number of labelled points per scene.
LabelUnit = Literal["scenes", "points", "points_per_scene"]
DATA_EFFICIENT_SCENE_FRACTIONS = (0.01, 0.05, 0.1, 0.2)  # CSC's limited scene reconstructions
DATA_EFFICIENT_POINTS_PER_SCENE = (20, 50, 100, 200)  # CSC's limited annotations


def kept_scenes(train_scenes: list[str], fraction: float, seed: int) -> list[str]:
    """The training scenes kept at `fraction` (0 < fraction <= 1), sorted; nested across fractions for one seed."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a fraction of scenes must lie in (0, 1], got {fraction}")
    order = np.random.default_rng(seed).permutation(sorted(train_scenes))
    return sorted(order[: max(1, math.ceil(fraction * len(order)))].tolist())


def scene_rng(scene: str, seed: int) -> np.random.Generator:
    """A generator of its own for each (seed, scene): a scene's draw is the same whatever else is loaded."""
    return np.random.default_rng([seed, zlib.crc32(scene.encode())])


def kept_point_count(labels: np.ndarray, count: int, scene: str, seed: int) -> np.ndarray:
    """`labels` ([N] int, IGNORE_LABEL = unlabelled) with only `count` labelled points left labelled."""
    if count < 1:
        raise ValueError(f"a number of labelled points per scene must be at least 1, got {count}")
    labelled = np.flatnonzero(labels != IGNORE_LABEL)
    kept = scene_rng(scene, seed).permutation(labelled)[:count]
    return _only(labels, kept)


def kept_point_fraction(labels: np.ndarray, fraction: float, scene: str, seed: int) -> np.ndarray:
    """`labels` with each labelled point kept with probability `fraction` (0 < fraction <= 1)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a fraction of points must lie in (0, 1], got {fraction}")
    kept = np.flatnonzero(scene_rng(scene, seed).random(len(labels)) < fraction)
    return _only(labels, kept)


def _only(labels: np.ndarray, kept: np.ndarray) -> np.ndarray:
    reduced = np.full(len(labels), IGNORE_LABEL, np.int16)
    reduced[kept] = labels[kept]
    return reduced
