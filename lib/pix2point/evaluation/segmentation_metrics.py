"""Semantic-segmentation scores from a confusion matrix (rows = true class, columns = predicted class).

Which classes count: a class absent from both the ground truth and the predictions has no IoU (NaN) and is
left out of the mIoU. A class that is predicted but never true has IoU 0 and does count, so predicting a
class the validation scenes do not contain lowers the mIoU. Mean class accuracy (recall averaged over
classes) counts only the classes present in the ground truth, since recall is undefined for the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentationScores:
    iou: np.ndarray  # [K] float64, NaN where the class is neither true nor predicted
    miou: float
    overall_accuracy: float
    mean_class_accuracy: float


def segmentation_scores(confusion: np.ndarray) -> SegmentationScores:
    confusion = _checked_confusion(confusion).astype(np.float64)
    true_positives = np.diag(confusion)
    true_counts = confusion.sum(axis=1)
    union = true_counts + confusion.sum(axis=0) - true_positives
    iou = _ratio(true_positives, union)
    return SegmentationScores(
        iou=iou,
        miou=float(mean_of_defined(iou)),
        overall_accuracy=float(_ratio(true_positives.sum(), confusion.sum())),
        mean_class_accuracy=float(mean_of_defined(_ratio(true_positives, true_counts))),
    )


def mean_of_defined(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Mean over the non-NaN entries; NaN (without numpy's empty-slice warning) where there are none."""
    values = np.asarray(values, np.float64)
    defined = ~np.isnan(values)
    return _ratio(np.where(defined, values, 0.0).sum(axis=axis), defined.sum(axis=axis))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator, denominator = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    return np.divide(numerator, denominator, out=np.full(np.broadcast(numerator, denominator).shape, np.nan),
                     where=denominator > 0)


def _checked_confusion(confusion: np.ndarray) -> np.ndarray:
    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"a confusion matrix must be square [K, K], got shape {confusion.shape}")
    if (confusion < 0).any():
        raise ValueError("a confusion matrix holds counts; it has negative entries")
    return confusion
