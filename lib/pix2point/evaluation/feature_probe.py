"""How well per-point features separate semantic classes without any finetuning.

The number is a linear probe: logistic regression on standardised features, scored by stratified k-fold
cross-validation on labelled points. A linear probe rather than k-NN because the probe points of one scene
are spatial neighbours of each other: k-NN on the xyz baseline would score well by copying the label of
the nearest sampled point on the same surface, which says nothing about the features. A t-SNE map of the
same points is for the eye only.

Both run with one BLAS/OpenMP thread: on a node shared with Ray workers, their threads spin-wait on each
other, and a 2000-point probe measured 35 s with the default thread pools against 1.6 s with one thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

PROBE_FOLDS = 5
PROBE_MAX_ITERATIONS = 2000


@dataclass(frozen=True)
class ProbeScore:
    features: str  # which features were probed
    dimensions: int
    points: int  # points probed: those of classes with at least PROBE_FOLDS sampled points
    classes: int
    accuracy_mean: float  # over folds
    accuracy_std: float
    balanced_accuracy_mean: float  # mean per-class recall: not dominated by walls and floors
    balanced_accuracy_std: float


def linear_probe(name: str, features: np.ndarray, labels: np.ndarray, seed: int) -> ProbeScore:
    """Cross-validated logistic-regression accuracy of `labels` from `features` [N, C]."""
    probed = probeable_points(labels)
    if len(np.unique(labels[probed])) < 2:
        raise ValueError(f"the linear probe needs two classes with at least {PROBE_FOLDS} sampled points each; "
                         f"the sample has class counts {dict(zip(*np.unique(labels, return_counts=True)))}")
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=PROBE_MAX_ITERATIONS))
    folds = StratifiedKFold(PROBE_FOLDS, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1):
        scores = cross_validate(classifier, features[probed], labels[probed], cv=folds,
                                scoring=("accuracy", "balanced_accuracy"))
    return ProbeScore(
        features=name,
        dimensions=features.shape[1],
        points=int(probed.sum()),
        classes=len(np.unique(labels[probed])),
        accuracy_mean=float(scores["test_accuracy"].mean()),
        accuracy_std=float(scores["test_accuracy"].std()),
        balanced_accuracy_mean=float(scores["test_balanced_accuracy"].mean()),
        balanced_accuracy_std=float(scores["test_balanced_accuracy"].std()),
    )


def probeable_points(labels: np.ndarray) -> np.ndarray:
    """Mask of the points whose class has enough samples to appear in every cross-validation fold."""
    classes, counts = np.unique(labels, return_counts=True)
    return np.isin(labels, classes[counts >= PROBE_FOLDS])


def tsne_embedding(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """[N, C] -> [N, 2]."""
    if perplexity >= len(features):
        raise ValueError(f"t-SNE perplexity {perplexity:g} must be below the number of sampled points "
                         f"({len(features)}): lower tsne_perplexity or raise tsne_points")
    with threadpool_limits(limits=1):
        return TSNE(perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
