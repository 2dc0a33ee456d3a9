from __future__ import annotations

import numpy as np
import pytest

from pix2point.evaluation.linear_svm import I2P_MAE_MODELNET40_C, linear_svm_score


def _blobs(rng: np.random.Generator, centres: np.ndarray, per_class: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat(np.arange(len(centres)), per_class)
    return centres[labels] + rng.normal(0, spread, (len(labels), centres.shape[1])), labels


def test_far_apart_blobs_are_classified_perfectly() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (4, 16))
    train, test = _blobs(rng, centres, 30, 0.5), _blobs(rng, centres, 10, 0.5)
    score = linear_svm_score(*train, *test)
    assert score.accuracy == 1.0 and score.mean_class_accuracy == 1.0
    assert score.per_class_accuracy == {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}
    assert (score.train_objects, score.test_objects, score.c) == (120, 40, I2P_MAE_MODELNET40_C)


def test_features_without_label_information_score_near_chance() -> None:
    rng = np.random.default_rng(1)
    train_x, test_x = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    score = linear_svm_score(train_x, rng.integers(0, 4, 400), test_x, rng.integers(0, 4, 400))
    assert 0.15 < score.accuracy < 0.35  # chance is 0.25


def test_per_class_accuracy_is_recall_on_the_test_split() -> None:
    train_x = np.array([[-5.0], [-4.0], [4.0], [5.0]])
    train_y = np.array([0, 0, 1, 1])
    test_x = np.array([[-5.0], [-3.0], [3.0], [-4.5]])  # the last one is labelled 1 but lies with class 0
    score = linear_svm_score(train_x, train_y, test_x, np.array([0, 0, 1, 1]), c=1.0)
    assert score.accuracy == 0.75
    assert score.per_class_accuracy == {0: 1.0, 1: 0.5} and score.mean_class_accuracy == 0.75


def test_bad_inputs_are_errors() -> None:
    features, labels = np.zeros((4, 3)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="2 classes"):
        linear_svm_score(features, np.zeros(4, int), features, labels)
    with pytest.raises(ValueError, match="non-finite"):
        linear_svm_score(np.full((4, 3), np.nan), labels, features, labels)
    with pytest.raises(ValueError, match="dimensions"):
        linear_svm_score(features, labels, np.zeros((4, 2)), labels)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        linear_svm_score(features, labels[:3], features, labels)
