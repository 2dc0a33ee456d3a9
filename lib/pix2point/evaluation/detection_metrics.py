"""3D detection metrics: IoU of axis-aligned boxes and VOC-style average precision, as VoteNet evaluates ScanNet.

Follows VoteNet's utils/eval_det.py (eval_det_cls, voc_ap with use_07_metric=False): per class, detections
of all scenes sorted by score; each is a true positive when its best-overlapping ground-truth box of the same
class and scene has IoU above the threshold and was not matched before (a duplicate is a false positive);
AP is the area under the precision envelope. One departure: a class with no ground-truth box in any scene
has no AP (NaN) and stays out of the mAP; eval_det divides by its zero positives and its mAP turns NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pix2point.geometry.boxes import Detections, box_iou


@dataclass(frozen=True)
class DetectionScores:
    iou_threshold: float
    average_precision: np.ndarray  # [K] per class; NaN where the class has no ground truth
    recall: np.ndarray  # [K] recall at the last detection; NaN where no ground truth

    @property
    def mean_ap(self) -> float:
        """mAP over the classes that have ground truth."""
        return _mean_over_present(self.average_precision)

    @property
    def mean_recall(self) -> float:
        """Recall at the last detection, averaged over the classes that have ground truth (VoteNet's AR)."""
        return _mean_over_present(self.recall)


def _mean_over_present(per_class: np.ndarray) -> float:
    present = ~np.isnan(per_class)
    return float(per_class[present].mean()) if present.any() else float("nan")


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope at the recalls reached (VOC 2010+, eval_det.voc_ap)."""
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    changes = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[changes + 1] - recall[changes]) * precision[changes + 1]))


def class_average_precision(predictions: Sequence[Detections], truths: Sequence[Detections], cls: int,
                            iou_threshold: float) -> tuple[float, float]:
    """(AP, final recall) of class `cls`; predictions[i] and truths[i] belong to scene i. NaN, NaN without ground truth."""
    gt = [t.boxes[t.classes == cls] for t in truths]
    positives = sum(len(boxes) for boxes in gt)
    if positives == 0:
        return float("nan"), float("nan")
    scene, boxes, scores = [], [], []
    for index, prediction in enumerate(predictions):
        keep = prediction.classes == cls
        scene += [index] * int(keep.sum())
        boxes.append(prediction.boxes[keep])
        scores.append(prediction.scores[keep])
    order = np.argsort(-np.concatenate(scores), kind="stable")
    scene, boxes = np.asarray(scene, np.int64)[order], np.concatenate(boxes).reshape(-1, 6)[order]
    matched = [np.zeros(len(b), bool) for b in gt]
    true_positive = np.zeros(len(order))
    for d in range(len(order)):
        candidates = gt[scene[d]]
        if len(candidates) == 0:
            continue
        overlaps = box_iou(boxes[d : d + 1], candidates)[0]
        best = int(overlaps.argmax())
        if overlaps[best] > iou_threshold and not matched[scene[d]][best]:
            true_positive[d], matched[scene[d]][best] = 1, True
    hits = np.cumsum(true_positive)
    recall = hits / positives
    precision = hits / np.maximum(np.arange(1, len(order) + 1), np.finfo(np.float64).eps)
    return voc_ap(recall, precision), float(recall[-1]) if len(recall) else 0.0


def detection_scores(predictions: Sequence[Detections], truths: Sequence[Detections], num_classes: int,
                     iou_threshold: float) -> DetectionScores:
    """Per-class AP and recall at one IoU threshold (VoteNet reports 0.25 and 0.5) over all scenes."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} scenes of predictions for {len(truths)} of ground truth")
    results = np.array([class_average_precision(predictions, truths, c, iou_threshold) for c in range(num_classes)])
    return DetectionScores(iou_threshold, results[:, 0], results[:, 1])
