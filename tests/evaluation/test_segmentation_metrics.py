import warnings

import numpy as np
import pytest

from pix2point.evaluation.segmentation_metrics import mean_of_defined, segmentation_scores

# Rows true, columns predicted. Classes 0 and 1 are true; class 2 is predicted once but never true;
# class 3 is neither true nor predicted.
CONFUSION = np.array([
    [4, 1, 1, 0],
    [2, 6, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 0],
])


def test_iou_per_class_counts_a_predicted_but_absent_class_as_zero_and_leaves_out_an_unseen_one():
    scores = segmentation_scores(CONFUSION)
    # class 0: 4 / (6 true + 6 predicted - 4); class 1: 6 / (8 + 7 - 6); class 2: 0 / (0 + 1 - 0)
    np.testing.assert_allclose(scores.iou[:3], [4 / 8, 6 / 9, 0.0])
    assert np.isnan(scores.iou[3])
    assert scores.miou == pytest.approx((4 / 8 + 6 / 9 + 0.0) / 3)


def test_accuracies_overall_and_over_true_classes():
    scores = segmentation_scores(CONFUSION)
    assert scores.overall_accuracy == pytest.approx(10 / 14)
    assert scores.mean_class_accuracy == pytest.approx((4 / 6 + 6 / 8) / 2)


def test_a_perfect_prediction_scores_one():
    scores = segmentation_scores(np.diag([3, 0, 5]))
    assert scores.miou == 1.0 and scores.overall_accuracy == 1.0 and scores.mean_class_accuracy == 1.0
    assert np.isnan(scores.iou[1])


def test_an_empty_confusion_has_no_scores_and_no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = segmentation_scores(np.zeros((3, 3), np.int64))
    assert np.isnan(scores.miou) and np.isnan(scores.overall_accuracy) and np.isnan(scores.mean_class_accuracy)


@pytest.mark.parametrize("confusion, message", [
    (np.zeros((2, 3)), "square"),
    (np.array([[1, -1], [0, 2]]), "negative"),
])
def test_bad_confusion_is_rejected(confusion, message):
    with pytest.raises(ValueError, match=message):
        segmentation_scores(confusion)


def test_mean_of_defined_skips_nan_per_column():
    values = np.array([[np.nan, 1.0, np.nan], [np.nan, 3.0, 2.0]])
    means = mean_of_defined(values, axis=0)
    assert np.isnan(means[0]) and means[1] == 2.0 and means[2] == 2.0
