"""Fine-tuning's data and evaluation: the reference's sampling and augmentation, voting that really averages the
logits of scaled copies, and training that lowers the loss on the smoke objects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pix2point.io.objects_table import read_objects
from pix2point.models.point_m2ae_classifier import PointM2AEClassifier, smoothed_cross_entropy
from pix2point.training.finetuning.object_finetuning import Voting, confusion_matrix, predict, vote_logits
from pix2point.training.finetuning.object_finetuning_data import (
    CloudAugmentation,
    augment_clouds,
    evaluation_clouds,
    fps_pools,
    pool_size,
    random_subsets,
    training_clouds,
    vote_copies,
)
from pix2point.training.weight_decay import weight_decay_groups

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")


def test_pool_sizes_are_the_references():
    assert [pool_size(n, 10_000) for n in (1024, 2048, 4096)] == [1200, 2400, 4800]
    assert pool_size(2048, 2048) == 2048  # never more than the object has


def test_training_samples_come_from_the_fps_pool_in_random_order():
    rng = np.random.default_rng(0)
    cloud = rng.normal(size=(2, 300, 3)).astype(np.float32)
    pools = fps_pools(cloud, 100)
    assert pools.shape == (2, 100) and all(len(set(pool)) == 100 for pool in pools)
    assert (pools[:, 0] == 0).all()  # FPS starts at point 0, so the pool is fixed per object
    drawn = random_subsets(cloud, pools, 64, rng)
    for sample, points, pool in zip(drawn, cloud, pools):
        rows = {tuple(row) for row in points[pool]}
        assert all(tuple(row) in rows for row in sample)
    assert not np.array_equal(random_subsets(cloud, pools, 64, rng), drawn)


def test_augmentation_scales_per_axis_then_rotates_about_the_up_axis_only():
    rng = np.random.default_rng(1)
    cloud = rng.normal(size=(8, 50, 3)).astype(np.float32)
    scaled = augment_clouds(cloud, np.random.default_rng(2), CloudAugmentation((0.9, 1.1), 0.0, None))
    ratio = scaled / cloud
    assert np.allclose(ratio, ratio[:, :1], atol=1e-4) and (0.9 <= ratio).all() and (ratio <= 1.1).all()
    rotated = augment_clouds(cloud, np.random.default_rng(2), CloudAugmentation((0.9, 1.1), 0.0, 1))
    assert np.allclose(rotated[..., 1], scaled[..., 1], atol=1e-5)  # y is the axis: untouched
    assert np.allclose(np.hypot(rotated[..., 0], rotated[..., 2]), np.hypot(scaled[..., 0], scaled[..., 2]), atol=1e-5)
    assert not np.allclose(rotated, scaled, atol=1e-2)
    batch = training_clouds(cloud, fps_pools(cloud, 50), 32, rng, CloudAugmentation())
    assert batch.shape == (8, 32, 3) and batch.dtype == torch.float32


def test_test_clouds_are_farthest_point_sampled_and_whole_objects_are_kept():
    cloud = np.random.default_rng(3).normal(size=(3, 64, 3)).astype(np.float32)
    assert evaluation_clouds(cloud, 64) is cloud or np.array_equal(evaluation_clouds(cloud, 64), cloud)
    down = evaluation_clouds(cloud, 16)
    assert down.shape == (3, 16, 3) and np.array_equal(down[:, 0], cloud[:, 0])


def test_voting_averages_the_logits_of_scaled_copies(encoder_spec):
    torch.manual_seed(0)
    model = PointM2AEClassifier(encoder_spec, 5, local_radius=(0.5, 1.0, 2.0)).eval()
    cloud = np.random.default_rng(4).normal(size=(6, 128, 3)).astype(np.float32) * 0.4
    voting = Voting(votes=3)
    voted = vote_logits(model, cloud, 96, voting, np.random.default_rng(9), 4, CPU)
    rng = np.random.default_rng(9)
    pools = fps_pools(cloud, pool_size(96, 128))
    copies = [vote_copies(cloud, pools, 96, rng, voting.scale_range, voting.translate) for _ in range(3)]
    per_copy = [predict(model, copy, 4, CPU) for copy in copies]
    assert voted.shape == (6, 5)
    assert np.allclose(voted, np.mean(per_copy, axis=0), atol=1e-6)
    assert not np.allclose(per_copy[0], per_copy[1], atol=1e-3)  # the copies differ: scaled and resampled
    assert not np.allclose(voted, predict(model, evaluation_clouds(cloud, 96), 4, CPU), atol=1e-3)
    spread = copies[0].std(axis=1) / cloud.std(axis=1)
    assert ((spread > 0.6) & (spread < 1.6)).all()  # per-axis scale in (2/3, 3/2)


def test_confusion_counts_true_rows_and_predicted_columns():
    assert confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), 3).tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_training_lowers_the_loss_on_the_smoke_objects(tiny_objects, encoder_spec):
    train = read_objects(tiny_objects, "train")
    torch.manual_seed(0)
    model = PointM2AEClassifier(encoder_spec, int(train.labels.max()) + 1, local_radius=(0.5, 1.0, 2.0), drop_path_rate=0.0)
    optimizer = torch.optim.AdamW(weight_decay_groups(model, 0.05), lr=2e-3)
    pools = fps_pools(train.points, 256)
    labels = torch.from_numpy(train.labels.astype(np.int64))
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(25):
        clouds = training_clouds(train.points, pools, 128, rng, CloudAugmentation(rotate_axis=None))
        loss = smoothed_cross_entropy(model(clouds), labels, 0.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


def test_zero_votes_give_no_voting_accuracy(tiny_objects):
    from types import SimpleNamespace

    from pix2point.training.finetuning.object_finetuning import voting_accuracy

    config = SimpleNamespace(voting=Voting(0))
    assert voting_accuracy(None, read_objects(tiny_objects, "test"), config, 0, CPU) is None


def test_batchnorm_recalibration_replaces_the_initial_statistics_with_the_datas(encoder_spec):
    """A fresh token embedding's first BatchNorm sees a variance of ~1e-5; its running variance starts at 1."""
    from pix2point.training.finetuning.object_finetuning import recalibrate_batchnorm

    torch.manual_seed(0)
    model = PointM2AEClassifier(encoder_spec, 5, local_radius=None).eval()
    first = model.encoder.token_embeds[0].first[1]
    cloud = np.random.default_rng(5).normal(size=(6, 128, 3)).astype(np.float32) * 0.4
    seen = []
    first.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().clone()))
    assert torch.equal(first.running_var, torch.ones_like(first.running_var))
    recalibrate_batchnorm(model, cloud, batch_size=8, device=CPU, seed=0)  # one batch of 6
    (rows,) = seen
    assert torch.allclose(first.running_mean, rows.mean(0), atol=1e-6)
    assert torch.allclose(first.running_var, rows.var(0), rtol=1e-3)
    assert first.running_var.max() < 1e-2 and not model.training  # the data's, and the mode is kept
