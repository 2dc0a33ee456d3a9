"""Few-shot subsets, Image2Point's augmentation and sparse object batches."""

import numpy as np
import pytest
import torch

from pix2point.training.object_data import ObjectAugmentation, augment_object, epoch_order, few_shot_indices, object_batch

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


def test_augmentation_stays_within_its_scale_shift_and_jitter_bounds():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (500, 3)).astype(np.float32)
    augmentation = ObjectAugmentation(scale_range=(0.9, 1.1), translate=0.2, jitter_sigma=0.01, jitter_clip=0.05)
    for _ in range(20):
        moved = augment_object(points, rng, augmentation)
        assert moved.dtype == np.float32 and moved.shape == points.shape
        # Solve moved = points * scale + shift + jitter per axis by least squares; jitter is the residual.
        for axis in range(3):
            design = np.stack([points[:, axis], np.ones(len(points))], 1)
            (scale, shift), *_ = np.linalg.lstsq(design, moved[:, axis], rcond=None)
            assert 0.89 < scale < 1.11 and abs(shift) < 0.21
    still = augment_object(points, rng, ObjectAugmentation((1.0, 1.0), 0.0, 0.0, 0.0))
    assert np.array_equal(still, points)


def test_object_batch_keeps_objects_apart_with_xyz_features():
    first = np.array([[0.01, 0.01, 0.01], [0.02, 0.02, 0.02], [0.5, 0.5, 0.5]], np.float32)
    second = np.array([[-0.5, 0.3, 0.1]], np.float32)
    tensor = object_batch([first, second], voxel_size=0.1)
    assert tensor.C[:, 0].bincount().tolist() == [2, 1]  # the first object's two near points share a voxel
    rows = tensor.C[:, 0] == 1
    assert torch.allclose(tensor.F[rows], torch.from_numpy(second))
    assert tensor.C[rows, 1:].tolist() == [[-5, 3, 1]]
