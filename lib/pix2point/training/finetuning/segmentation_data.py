"""Semantic-segmentation data: whole labelled scenes, with a chosen share of labels kept for training.

Training scenes stream to the workers one scene file per sample (training/runtime/sample_stream.py, `SceneSource`),
each read when a step uses it and given its label budget there; validation scenes are read one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pix2point.io.row_groups import RowGroupReader
from pix2point.io.scenes_table import ScenePoints, points_from_table, points_path, read_splits
from pix2point.training.finetuning.label_budget import LabelUnit, kept_point_count, kept_point_fraction, kept_scenes
from pix2point.training.runtime.sample_stream import Arrays


def split_scenes(scenes_dir: Path, split: str) -> list[str]:
    return sorted(scene for scene, scene_split in read_splits(scenes_dir).items() if scene_split == split)


def budget_scenes(scenes_dir: Path, budget: float, unit: LabelUnit, seed: int) -> list[str]:
    """The training scenes a label budget trains on: a `budget` share of them for unit scenes, else all."""
    names = split_scenes(scenes_dir, "train")
    return kept_scenes(names, budget, seed) if unit == "scenes" else names


def with_label_budget(name: str, points: ScenePoints, budget: float, unit: LabelUnit, seed: int) -> ScenePoints:
    """Scene `name`'s points with labels outside its budget set to IGNORE_LABEL (training/finetuning/label_budget.py): a
    fraction of its points, or a number of labelled points; unit scenes keeps every label of a kept scene."""
    if unit == "scenes":
        return points
    if unit == "points_per_scene":
        label = kept_point_count(points.label, int(budget), name, seed)
    else:
        label = kept_point_fraction(points.label, budget, name, seed)
    return ScenePoints(points.xyz, points.rgb, label)


@dataclass(frozen=True)
class SceneSource:
    """A run's training scenes for the shared stream: sample i is scenes[i], read whole (its points file)
    with the run's label budget applied."""

    scenes_dir: Path
    scenes: tuple[str, ...]
    budget: float
    unit: LabelUnit
    budget_seed: int  # the run's seed, which also draws the label budget
    seed: int
    per_rank: int
    world: int

    @classmethod
    def for_run(cls, scenes_dir: Path, budget: float, unit: LabelUnit, seed: int, scenes_per_batch: int,
                world: int) -> SceneSource:
        """`scenes_per_batch` scenes per worker and step, or all the run's scenes when fewer."""
        names = tuple(budget_scenes(scenes_dir, budget, unit, seed))
        return cls(scenes_dir, names, budget, unit, seed, seed, min(scenes_per_batch, len(names)), world)

    def __len__(self) -> int:
        return len(self.scenes)

    def reader(self) -> SceneReader:
        return SceneReader(self)


class SceneReader:
    """Reads one training scene: {"xyz": [P, 3] float32 metres, "rgb": [P, 3] uint8, "label": [P] int16,
    IGNORE_LABEL outside the budget}."""

    def __init__(self, source: SceneSource):
        self.source = source
        self._files = RowGroupReader()

    @property
    def bytes_read(self) -> int:
        return self._files.bytes_read

    def read(self, sample: int, step: int, rank: int, slot: int) -> Arrays:
        name, source = self.source.scenes[sample], self.source
        points = points_from_table(self._files.read_file(points_path(source.scenes_dir, name)))
        points = with_label_budget(name, points, source.budget, source.unit, source.budget_seed)
        return {"xyz": points.xyz, "rgb": points.rgb, "label": points.label}


def validation_scenes(scenes_dir: Path) -> list[str]:
    return split_scenes(scenes_dir, "val")
