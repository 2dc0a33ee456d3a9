"""N-way K-shot episodes as Point-BERT and Point-MAE draw them (datasets/generate_few_shot_data.py): per fold,
`ways` classes drawn at random; per class `shots` support objects from the train split and `queries` query
objects from the test split; labels remapped to 0..ways-1 in the order the classes were drawn.

An episode is a pure function of (seed, ways, shots, fold) and the two splits' labels, so every network
evaluated on a fold sees the same support and query objects, and a resumed stage draws the same episodes.
No torch here: the stage and its tests draw episodes without the training stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Episode:
    ways: int
    shots: int
    fold: int
    classes: np.ndarray  # [ways] int, the objects artefact's labels; episode label i is classes[i]
    support: np.ndarray  # [ways * shots] int, row indices into the train split, class-major
    query: np.ndarray  # [ways * queries] int, row indices into the test split, class-major
    support_labels: np.ndarray  # [ways * shots] int64 in 0..ways-1
    query_labels: np.ndarray  # [ways * queries] int64 in 0..ways-1

    @property
    def name(self) -> str:
        return episode_name(self.ways, self.shots, self.fold)


def episode_name(ways: int, shots: int, fold: int) -> str:
    return f"{ways}way-{shots}shot-fold{fold}"


def episode_seed(seed: int, ways: int, shots: int, fold: int) -> int:
    """The seed an episode's training draws from (initial weights, order, augmentation), apart from the stream
    its objects were drawn with."""
    return int(np.random.SeedSequence([seed, ways, shots, fold]).spawn(2)[1].generate_state(1)[0])


def draw_episode(train_labels: np.ndarray, test_labels: np.ndarray, *, seed: int, ways: int, shots: int, fold: int,
                 queries: int) -> Episode:
    """The episode (seed, ways, shots, fold) of objects whose train and test splits have these [M] labels.

    As the reference: the classes are a random permutation's first `ways` of the classes in the train split;
    each class's support objects are a random draw of `shots` of its train objects, its query objects a random
    draw of `queries` of its test objects (support and query are disjoint because the splits are).
    Raises ValueError naming the param when `ways` exceeds the classes, or a drawn class has fewer than
    `shots` train or `queries` test objects.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, ways, shots, fold]).spawn(2)[0])
    labels = np.unique(train_labels)
    if ways > len(labels):
        raise ValueError(f"param 'ways' = {ways} exceeds the {len(labels)} classes of the objects' train split; "
                         "lower it or use objects with more classes")
    classes = rng.permutation(labels)[:ways]
    support = [_draw(rng, train_labels, label, shots, "shots", "train") for label in classes]
    query = [_draw(rng, test_labels, label, queries, "queries", "test") for label in classes]
    return Episode(ways, shots, fold, classes, np.concatenate(support), np.concatenate(query),
                   np.repeat(np.arange(ways, dtype=np.int64), shots), np.repeat(np.arange(ways, dtype=np.int64), queries))


def _draw(rng: np.random.Generator, labels: np.ndarray, label: int, count: int, param: str, split: str) -> np.ndarray:
    members = np.flatnonzero(labels == label)
    if len(members) < count:
        raise ValueError(f"param '{param}' = {count} exceeds the {len(members)} {split} objects of class {label}")
    return rng.permutation(members)[:count]
