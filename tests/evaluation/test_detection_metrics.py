"""3D box IoU and VOC-style AP against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pix2point.evaluation.detection_metrics import detection_scores, voc_ap
from pix2point.geometry.boxes import Detections, box_iou


def test_box_iou_by_hand():
    a = np.array([[0, 0, 0, 2, 2, 2], [0, 0, 0, 1, 1, 1]], float)
    b = np.array([[1, 1, 1, 3, 3, 3], [1, 0, 0, 2, 1, 1], [0, 0, 0, 1, 1, 1]], float)
    # overlap 1 of 8 + 8 - 1; a face-touching box and a disjoint one overlap nothing; a box in a box: 1/8.
    np.testing.assert_allclose(box_iou(a, b), [[1 / 15, 1 / 8, 1 / 8], [0, 0, 1]])


def test_voc_ap_is_the_area_under_the_precision_envelope():
    # recall 0.5 at precision 1, then recall 1 at precision 0.5 after two misses: 0.5 * 1 + 0.5 * 0.5.
    assert voc_ap(np.array([0.5, 0.5, 0.5, 1.0]), np.array([1, 0.5, 1 / 3, 0.5])) == pytest.approx(0.75)


A = [0, 0, 0, 1, 1, 1]
B = [2, 2, 0, 3, 3, 1]
C = [5, 5, 0, 7, 6, 1]


def scenes():
    """Class 0: two ground-truth boxes; a hit, a duplicate of it, a miss and a loose hit (IoU 1/3).
    Class 1: one ground-truth box, never detected. Class 2: detected once but absent from the ground truth."""
    truths = [
        Detections(np.array([A], float), np.array([0]), np.ones(1)),
        Detections(np.array([B, C], float), np.array([0, 1]), np.ones(2)),
    ]
    predictions = [
        Detections(np.array([A, [0.1, 0, 0, 1.1, 1, 1]], float), np.array([0, 0]), np.array([0.9, 0.8])),
        Detections(np.array([[8, 8, 0, 9, 9, 1], [2.5, 2, 0, 3.5, 3, 1], C], float), np.array([0, 0, 2]),
                   np.array([0.7, 0.6, 0.95])),
    ]
    return predictions, truths


def test_ap_at_025_counts_the_duplicate_as_a_false_positive():
    scores = detection_scores(*scenes(), num_classes=3, iou_threshold=0.25)
    # Class 0 in score order: TP, FP (duplicate), FP, TP -> recall .5 .5 .5 1, precision 1 .5 1/3 .5: AP .5 + .25.
    assert scores.average_precision[0] == pytest.approx(0.75)
    assert scores.recall[0] == pytest.approx(1.0)
    assert scores.average_precision[1] == 0.0 and scores.recall[1] == 0.0
    assert math.isnan(scores.average_precision[2])
    assert scores.mean_ap == pytest.approx((0.75 + 0.0) / 2)


def test_ap_at_05_rejects_the_loose_hit():
    scores = detection_scores(*scenes(), num_classes=3, iou_threshold=0.5)
    # TP, FP, FP, FP: recall stays .5 at precision 1 -> AP .5.
    assert scores.average_precision[0] == pytest.approx(0.5)
    assert scores.mean_ap == pytest.approx(0.25)


def test_scene_counts_must_agree():
    predictions, truths = scenes()
    with pytest.raises(ValueError, match="scenes"):
        detection_scores(predictions[:1], truths, num_classes=3, iou_threshold=0.25)
