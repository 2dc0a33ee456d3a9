import numpy as np
import pytest

from pix2point.evaluation.feature_probe import PROBE_FOLDS, linear_probe, tsne_embedding


def clustered(points_per_class: int, classes: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs, one per class, centres one unit apart along separate axes."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), points_per_class)
    features = np.eye(classes, 8)[labels] + spread * rng.normal(size=(len(labels), 8))
    return features, labels


def test_separable_features_probe_near_perfectly():
    features, labels = clustered(40, 3, spread=0.05)
    score = linear_probe("blobs", features, labels, seed=0)
    assert score.accuracy_mean > 0.97 and score.balanced_accuracy_mean > 0.97
    assert (score.features, score.dimensions, score.points, score.classes) == ("blobs", 8, 120, 3)


def test_features_unrelated_to_the_labels_probe_near_chance():
    features, labels = clustered(60, 3, spread=0.05)
    shuffled = np.random.default_rng(1).permutation(labels)
    assert linear_probe("noise", features, shuffled, seed=0).balanced_accuracy_mean < 0.6


def test_a_class_too_rare_for_every_fold_is_left_out():
    features, labels = clustered(40, 3, spread=0.05)
    rare = np.zeros((PROBE_FOLDS - 1, 8))
    score = linear_probe("blobs", np.vstack([features, rare]), np.concatenate([labels, np.full(PROBE_FOLDS - 1, 7)]), 0)
    assert score.points == 120 and score.classes == 3


def test_a_single_probeable_class_is_an_error():
    with pytest.raises(ValueError, match="two classes"):
        linear_probe("one", np.zeros((20, 2)), np.zeros(20, np.int64), seed=0)


def test_tsne_keeps_blobs_apart():
    features, labels = clustered(25, 2, spread=0.02)
    embedding = tsne_embedding(features, perplexity=10, seed=0)
    assert embedding.shape == (50, 2)
    centres = np.array([embedding[labels == k].mean(axis=0) for k in (0, 1)])
    within = max(np.linalg.norm(embedding[labels == k] - centres[k], axis=1).mean() for k in (0, 1))
    assert np.linalg.norm(centres[0] - centres[1]) > 3 * within


def test_tsne_perplexity_must_be_below_the_point_count():
    with pytest.raises(ValueError, match="tsne_perplexity"):
        tsne_embedding(np.zeros((10, 3)), perplexity=10, seed=0)
