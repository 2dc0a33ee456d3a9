"""Few-shot subsets, Image2Point's augmentation and sparse object batches."""

import numpy as np
import pytest
import torch

from pix2point.training.finetuning.object_data import (
    ObjectAugmentation, augment_object, epoch_order, few_shot_indices, object_batch)

LABELS = np.repeat(np.arange(4), [5, 3, 7, 4])


def test_few_shot_takes_exactly_k_per_class_reproducibly():
    chosen = few_shot_indices(LABELS, 3, seed=1)
    assert np.bincount(LABELS[chosen]).tolist() == [3, 3, 3, 3]
    assert np.array_equal(chosen, few_shot_indices(LABELS, 3, seed=1))
    assert not np.array_equal(chosen, few_shot_indices(LABELS, 3, seed=2))
    assert np.array_equal(few_shot_indices(LABELS, None, seed=1), np.arange(len(LABELS)))


def test_more_shots_than_a_class_has_is_an_error_naming_the_class():
    with pytest.raises(ValueError, match="class 1 has 3 training objects, fewer than shots=4"):
        few_shot_indices(LABELS, 4, seed=0)


def test_an_epoch_makes_whole_passes_before_repeating_an_object():
    order = epoch_order(8, 20, np.random.default_rng(0))
    assert len(order) == 20
    assert sorted(order[:8]) == list(range(8)) and sorted(order[8:16]) == list(range(8))
    assert len(set(order[16:])) == 4


def fitted(points: np.ndarray, moved: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per axis, solve moved = points * scale + shift + jitter by least squares: (scales, shifts, residuals)."""
    scales, shifts, residuals = [], [], []
    for axis in range(3):
        design = np.stack([points[:, axis], np.ones(len(points))], 1)
        (scale, shift), *_ = np.linalg.lstsq(design, moved[:, axis], rcond=None)
        scales.append(scale), shifts.append(shift), residuals.append(moved[:, axis] - design @ (scale, shift))
    return np.array(scales), np.array(shifts), np.stack(residuals, 1)


def test_augmentation_stays_within_its_scale_shift_and_uniform_jitter_bounds():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (500, 3)).astype(np.float32)
    always = ObjectAugmentation(scale_probability=1.0, translate_probability=1.0, jitter_probability=1.0)
    for _ in range(20):
        moved = augment_object(points, rng, always)
        assert moved.dtype == np.float32 and moved.shape == points.shape
        scales, shifts, residuals = fitted(points, moved)
        assert (0.89 < scales).all() and (scales < 1.11).all() and (abs(shifts) < 0.21).all()
        # Uniform in [-0.0125, 0.0125] (Image2Point: 0.025 * (rand - 0.5)): bounded, std 0.0125 / sqrt(3).
        assert abs(residuals).max() < 0.0126 * 1.2 and 0.0125 / 3 ** 0.5 * 0.9 < residuals.std() < 0.0125 / 3 ** 0.5 * 1.1
    still = augment_object(points, rng, ObjectAugmentation((1.0, 1.0), 1.0, 0.0, 1.0, 0.0, 1.0))
    assert np.array_equal(still, points)


def test_augmentation_applies_each_step_with_image2points_probabilities():
    rng = np.random.default_rng(1)
    points = rng.uniform(-1, 1, (200, 3)).astype(np.float32)
    draws = 400
    applied = np.zeros(3)
    for _ in range(draws):
        scales, shifts, residuals = fitted(points, augment_object(points, rng, ObjectAugmentation()))
        # Jitter moves the fitted scale and shift by ~1e-3; a drawn scale or shift is far larger on some axis.
        applied += [abs(scales - 1).max() > 4e-3, abs(shifts).max() > 4e-3, abs(residuals).max() > 1e-5]
    np.testing.assert_allclose(applied / draws, [0.9, 0.9, 0.7], atol=0.06)


def test_voxel_coordinates_are_rounded_as_image2point_or_floored():
    points = np.array([[0.06, -0.04, 0.149]], np.float32)
    assert object_batch([points], voxel_size=0.1).C[:, 1:].tolist() == [[1, 0, 1]]
    assert object_batch([points], voxel_size=0.1, rounding="floor").C[:, 1:].tolist() == [[0, -1, 1]]


def test_object_batch_keeps_objects_apart_with_xyz_features():
    first = np.array([[0.01, 0.01, 0.01], [0.02, 0.02, 0.02], [0.5, 0.5, 0.5]], np.float32)
    second = np.array([[-0.5, 0.3, 0.1]], np.float32)
    tensor = object_batch([first, second], voxel_size=0.1)
    assert tensor.C[:, 0].bincount().tolist() == [2, 1]  # the first object's two near points share a voxel
    rows = tensor.C[:, 0] == 1
    assert torch.allclose(tensor.F[rows], torch.from_numpy(second))
    assert tensor.C[rows, 1:].tolist() == [[-5, 3, 1]]
