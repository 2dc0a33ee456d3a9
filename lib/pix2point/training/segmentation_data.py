"""Semantic-segmentation data: whole labelled scenes, with a chosen share of labels kept for training."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from pix2point.io.scenes_table import IGNORE_LABEL, ScenePoints, read_points, read_splits

LabelUnit = Literal["scenes", "points"]


@dataclass(frozen=True)
class LabelledScene:
    name: str
    points: ScenePoints  # labels already reduced to the kept share (IGNORE_LABEL elsewhere)


def split_scenes(scenes_dir: Path, split: str) -> list[str]:
    return sorted(scene for scene, scene_split in read_splits(scenes_dir).items() if scene_split == split)


def limited_labels(scenes_dir: Path, fraction: float, unit: LabelUnit, seed: int) -> list[LabelledScene]:
    """The training scenes with `fraction` of their labels: of whole scenes (at least one), or of each scene's points."""
    names = split_scenes(scenes_dir, "train")
    rng = np.random.default_rng(seed)
    if unit == "scenes":
        kept = sorted(rng.choice(names, size=max(1, math.ceil(fraction * len(names))), replace=False))
        return [LabelledScene(name, read_points(scenes_dir, name)) for name in kept]
    scenes = []
    for name in names:
        points = read_points(scenes_dir, name)
        hidden = rng.random(len(points.label)) >= fraction
        label = np.where(hidden, IGNORE_LABEL, points.label).astype(np.int16)
        scenes.append(LabelledScene(name, ScenePoints(points.xyz, points.rgb, label)))
    return scenes


def validation_scenes(scenes_dir: Path) -> list[LabelledScene]:
    return [LabelledScene(name, read_points(scenes_dir, name)) for name in split_scenes(scenes_dir, "val")]
