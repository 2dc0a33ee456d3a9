"""Linear SVM accuracy of frozen object features: the I2P-MAE / Point-MAE pretraining evaluation.

As the reference (ZrrSkywalker/I2P-MAE, tools/runner_test_svm.py) does: an sklearn SVC with a linear
kernel (libsvm, one-vs-one over classes) fitted on the raw features of the train split (the encoder's
max-pooled tokens), scored on the test split. The features are not standardised, so the number measures
them as they come out of the encoder, scale included. This function fits one given C; the paper fixes
C = 0.0093 for ModelNet40 (0.018 for ScanObjectNN), while the `evaluate_objects` stage picks C among its
`svm_c` candidates by cross-validation on the train split (a departure docs/departures.md states).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

I2P_MAE_MODELNET40_C = 0.0093


@dataclass(frozen=True)
class SvmScore:
    accuracy: float  # on the test split
    c: float
    train_objects: int
    test_objects: int
    per_class_accuracy: dict[int, float]  # label -> recall on the test split, for the labels it holds
    mean_class_accuracy: float


def linear_svm_score(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                     test_labels: np.ndarray, c: float = I2P_MAE_MODELNET40_C) -> SvmScore:
    """Fit a linear SVM on [N, D] train features and labels, score it on the test split."""
    # scikit-learn takes a second to import; stage modules import this one for I2P_MAE_MODELNET40_C.
    from sklearn.metrics import recall_score
    from sklearn.svm import SVC

    _check("train", train_features, train_labels)
    _check("test", test_features, test_labels)
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"train features have {train_features.shape[1]} dimensions, test {test_features.shape[1]}")
    if len(np.unique(train_labels)) < 2:
        raise ValueError(f"a linear SVM needs at least 2 classes in the train split, got {np.unique(train_labels)}")
    if c <= 0:
        raise ValueError(f"SVM C must be positive, got {c}")
    svm = SVC(kernel="linear", C=c).fit(train_features, train_labels)
    predicted = svm.predict(test_features)
    labels = np.unique(test_labels)
    recalls = recall_score(test_labels, predicted, labels=labels, average=None, zero_division=0.0)
    return SvmScore(
        accuracy=float(np.mean(predicted == test_labels)),
        c=c,
        train_objects=len(train_labels),
        test_objects=len(test_labels),
        per_class_accuracy={int(label): float(recall) for label, recall in zip(labels, recalls)},
        mean_class_accuracy=float(np.mean(recalls)),
    )


def _check(split: str, features: np.ndarray, labels: np.ndarray) -> None:
    if features.ndim != 2 or labels.shape != (len(features),):
        raise ValueError(f"{split} features must be [N, D] with N labels; got {features.shape} and {labels.shape}")
    if not len(features):
        raise ValueError(f"the {split} split has no objects")
    if not np.isfinite(features).all():
        raise ValueError(f"{split} features hold {np.count_nonzero(~np.isfinite(features))} non-finite values")
