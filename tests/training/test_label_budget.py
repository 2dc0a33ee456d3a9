"""Label-budget draws: ScanNet's data-efficient benchmark (limited scenes, limited points per scene) and fractions."""

import numpy as np
import pytest

from stages import finetune

from pix2point.training.finetuning.label_budget import (
    DATA_EFFICIENT_POINTS_PER_SCENE, DATA_EFFICIENT_SCENE_FRACTIONS, kept_point_count, kept_point_fraction, kept_scenes,
)
from pix2point.training.finetuning.segmentation_data import split_scenes
from tests.reference_loaders import limited_labels

SCANNET_TRAIN = [f"scene{room:04d}_{scan:02d}" for room in range(600) for scan in range(2)] + ["scene0600_00"]  # 1201


def test_limited_scenes_are_reproducible_nested_and_sized_by_ceiling():
    kept = [kept_scenes(SCANNET_TRAIN, fraction, seed=3) for fraction in DATA_EFFICIENT_SCENE_FRACTIONS]
    assert [len(k) for k in kept] == [13, 61, 121, 241]  # ceil of 1, 5, 10, 20 % of ScanNet's 1201 training scans
    assert all(set(small) < set(large) for small, large in zip(kept, kept[1:]))
    assert kept[0] == kept_scenes(list(reversed(SCANNET_TRAIN)), 0.01, seed=3)  # independent of the listing order
    assert kept[0] != kept_scenes(SCANNET_TRAIN, 0.01, seed=4)
    assert kept_scenes(["scene0000_00", "scene0001_00"], 0.01, seed=0) in (["scene0000_00"], ["scene0001_00"])
    with pytest.raises(ValueError, match=r"fraction of scenes must lie in \(0, 1\]"):
        kept_scenes(SCANNET_TRAIN, 20, seed=0)


def _labels(count: int, seed: int) -> np.ndarray:
    labels = np.random.default_rng(seed).integers(0, 20, count).astype(np.int16)
    labels[::3] = -1  # a third unlabelled
    return labels


def test_limited_points_keep_exactly_k_labelled_points_nested_across_budgets():
    labels = _labels(3000, seed=0)
    kept = [kept_point_count(labels, count, "scene0000_00", seed=1) for count in DATA_EFFICIENT_POINTS_PER_SCENE]
    for count, reduced in zip(DATA_EFFICIENT_POINTS_PER_SCENE, kept):
        assert (reduced >= 0).sum() == count
        assert np.array_equal(reduced[reduced >= 0], labels[reduced >= 0])  # kept points keep their own label
    masks = [reduced >= 0 for reduced in kept]
    assert all(np.all(small <= large) for small, large in zip(masks, masks[1:]))
    np.testing.assert_array_equal(kept[0], kept_point_count(labels, 20, "scene0000_00", seed=1))
    assert not np.array_equal(kept[0], kept_point_count(labels, 20, "scene0000_01", seed=1))  # each scene its own draw
    assert not np.array_equal(kept[0], kept_point_count(labels, 20, "scene0000_00", seed=2))


def test_a_scene_with_fewer_labelled_points_than_the_budget_keeps_them_all():
    labels = np.array([-1, 4, -1, 7, 2], np.int16)
    np.testing.assert_array_equal(kept_point_count(labels, 200, "scene0001_00", seed=0), labels)
    with pytest.raises(ValueError, match="at least 1"):
        kept_point_count(labels, 0, "scene0001_00", seed=0)


def test_a_fraction_of_points_keeps_about_that_share_of_the_labelled_points():
    labels = _labels(20_000, seed=1)
    reduced = kept_point_fraction(labels, 0.1, "scene0002_00", seed=0)
    assert 0.09 < (reduced >= 0).sum() / (labels >= 0).sum() < 0.11
    np.testing.assert_array_equal(kept_point_fraction(labels, 1.0, "scene0002_00", seed=0), labels)


def test_limited_labels_gives_every_training_scene_its_points_budget(tiny_scenes):
    scenes = limited_labels(tiny_scenes, 50, "points_per_scene", seed=0)
    assert [s.name for s in scenes] == split_scenes(tiny_scenes, "train")
    assert all((s.points.label >= 0).sum() == 50 for s in scenes)
    again = limited_labels(tiny_scenes, 50, "points_per_scene", seed=0)
    assert all(np.array_equal(a.points.label, b.points.label) for a, b in zip(scenes, again))


def test_finetune_reads_budgets_per_unit():
    assert finetune.Params(label_unit="points_per_scene", label_fractions=[20, 50, 100, 200]).label_fractions == [20, 50, 100, 200]
    with pytest.raises(ValueError, match="whole numbers >= 1, got \\[0.5\\]"):
        finetune.Params(label_unit="points_per_scene", label_fractions=[0.5, 20])
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\], got \[20.0\]"):
        finetune.Params(label_unit="scenes", label_fractions=[20])
