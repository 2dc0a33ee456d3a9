"""I2P-MAE's training data: the training split of the objects artefact, with (when the run needs them) each
point's 2D saliency averaged over the 3 views and its 3 views' teacher features side by side, from the
views2d artefact (io/views_table.py), whose rows follow the objects' rows.

Saliency as the reference (`saliency_distribution: reference`): each view's map is a distribution over its
cells (CLIP's attention probabilities in I2P-MAE), so the masking softmax over the views' mean is close to
uniform. `min_max` first rescales each view's values at the object's points to [0, 1], which makes the
softmax markedly sharper (pix2point's earlier choice)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pix2point.io.objects_table import objects_path, read_objects
from pix2point.io.views_table import read_views, views_path
from pix2point.training.params import SaliencyDistribution


@dataclass(frozen=True)
class ObjectViews:
    points: np.ndarray  # [M, N, 3] float32
    saliency: np.ndarray | None  # [M, N] float32: the mean of the 3 views' saliency at each point
    features: np.ndarray | None  # [M, N, V * C] float16: view 0's C channels, then view 1's, then view 2's

    @property
    def feature_channels(self) -> int | None:
        return None if self.features is None else self.features.shape[-1]


@dataclass(frozen=True)
class MAEBatch:
    points: torch.Tensor  # [B, N, 3] augmented
    saliency: torch.Tensor | None  # [B, N]
    features: torch.Tensor | None  # [B, N, V * C] float16 (gathered per token before widening to float32)


def load_object_views(objects_dir: Path, views_dir: Path | None,
                      saliency_distribution: SaliencyDistribution = "reference") -> ObjectViews:
    objects = read_objects(objects_dir, "train")
    if views_dir is None:
        return ObjectViews(objects.points, None, None)
    views = read_views(views_dir, "train")
    if views.shapes != objects.shapes:
        raise ValueError(f"{views_path(views_dir)}: its training rows ({len(views.shapes)}) are not the objects of "
                         f"{objects_path(objects_dir)} ({len(objects.shapes)}) in the same order; rebuild views2d on these objects")
    if views.features.shape[2] != objects.points.shape[1]:
        raise ValueError(f"{views_path(views_dir)}: {views.features.shape[2]} points per object, but "
                         f"{objects_path(objects_dir)} has {objects.points.shape[1]}")
    features = views.features.transpose(0, 2, 1, 3).reshape(*objects.points.shape[:2], -1)
    saliency = views.saliency if saliency_distribution == "reference" else min_max_per_view(views.saliency)
    return ObjectViews(objects.points, saliency.mean(axis=1, dtype=np.float32), np.ascontiguousarray(features))


def min_max_per_view(saliency: np.ndarray) -> np.ndarray:
    """[M, V, N] -> each object's view rescaled to [0, 1] over its points (a constant view becomes all 0)."""
    low, high = saliency.min(axis=2, keepdims=True), saliency.max(axis=2, keepdims=True)
    return ((saliency - low) / np.maximum(high - low, np.finfo(np.float32).tiny)).astype(np.float32)


def scale_and_translate(points: np.ndarray, rng: np.random.Generator, scale_range: tuple[float, float],
                        translate: float) -> np.ndarray:
    """[B, N, 3] -> each cloud scaled per axis and shifted, as Point-M2AE's PointcloudScaleAndTranslate.
    Only for runs without views2d data: the views were projected from the unaugmented cloud, and both
    transforms change its depth images (pretrain's params reject the combination)."""
    scale = rng.uniform(*scale_range, size=(len(points), 1, 3))
    shift = rng.uniform(-translate, translate, size=(len(points), 1, 3))
    return (points * scale + shift).astype(np.float32)


def sample_batch(data: ObjectViews, size: int, rng: np.random.Generator, scale_range: tuple[float, float],
                 translate: float) -> MAEBatch:
    picks = np.sort(rng.choice(len(data.points), size=min(size, len(data.points)), replace=False))
    return MAEBatch(
        points=torch.from_numpy(scale_and_translate(data.points[picks], rng, scale_range, translate)),
        saliency=None if data.saliency is None else torch.from_numpy(data.saliency[picks]),
        features=None if data.features is None else torch.from_numpy(data.features[picks]),
    )
