"""Semantic-segmentation data: whole labelled scenes, with a chosen share of labels kept for training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pix2point.io.scenes_table import ScenePoints, read_points, read_splits
from pix2point.training.label_budget import LabelUnit, kept_point_count, kept_point_fraction, kept_scenes


@dataclass(frozen=True)
class LabelledScene:
    name: str
    points: ScenePoints  # labels already reduced to the kept share (IGNORE_LABEL elsewhere)


def split_scenes(scenes_dir: Path, split: str) -> list[str]:
    return sorted(scene for scene, scene_split in read_splits(scenes_dir).items() if scene_split == split)


def limited_labels(scenes_dir: Path, budget: float, unit: LabelUnit, seed: int) -> list[LabelledScene]:
    """The training scenes with a label budget (training/label_budget.py): a fraction of whole scenes, a
    fraction of each scene's points, or a number of labelled points per scene."""
    names = split_scenes(scenes_dir, "train")
    if unit == "scenes":
        return [LabelledScene(name, read_points(scenes_dir, name)) for name in kept_scenes(names, budget, seed)]
    scenes = []
    for name in names:
        points = read_points(scenes_dir, name)
        if unit == "points_per_scene":
            label = kept_point_count(points.label, int(budget), name, seed)
        else:
            label = kept_point_fraction(points.label, budget, name, seed)
        scenes.append(LabelledScene(name, ScenePoints(points.xyz, points.rgb, label)))
    return scenes


def validation_scenes(scenes_dir: Path) -> list[LabelledScene]:
    return [LabelledScene(name, read_points(scenes_dir, name)) for name in split_scenes(scenes_dir, "val")]
