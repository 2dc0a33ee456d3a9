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
import pyarrow.parquet as pq
import torch

from pix2point.io.objects_table import objects_path
from pix2point.io.views_table import views_path
from pix2point.training.param_groups import SaliencyDistribution


@dataclass(frozen=True)
class MAEBatch:
    points: torch.Tensor  # [B, N, 3] augmented
    saliency: torch.Tensor | None  # [B, N]
    features: torch.Tensor | None  # [B, N, V * C] float16 (gathered per token before widening to float32)


def check_views_match(objects_dir: Path, views_dir: Path) -> None:
    """Raises ValueError naming both files unless views.parquet's rows are objects.parquet's objects, in the
    same order, with as many points each (reads the shape columns and the schemas only)."""
    objects, views = objects_path(objects_dir), views_path(views_dir)
    if not views.is_file():
        raise FileNotFoundError(f"{views}: no views table (is {views_dir} a views2d artefact?)")
    object_shapes = pq.read_table(objects, columns=["shape"])["shape"].to_pylist()
    view_shapes = pq.read_table(views, columns=["shape"])["shape"].to_pylist()
    if object_shapes != view_shapes:
        raise ValueError(f"{views}: its rows ({len(view_shapes)}) are not the objects of {objects} "
                         f"({len(object_shapes)}) in the same order; rebuild views2d on these objects")
    view_points = pq.read_schema(views).field("features").type.shape[1]
    object_points = pq.read_schema(objects).field("points").type.shape[0]
    if view_points != object_points:
        raise ValueError(f"{views}: {view_points} points per object, but {objects} has {object_points}")


def point_views(features: np.ndarray, saliency: np.ndarray,
                saliency_distribution: SaliencyDistribution) -> tuple[np.ndarray, np.ndarray]:
    """One object's (or a stack's, leading axes kept) views per point: features [..., V, N, C] float16 ->
    [..., N, V * C] (view 0's C channels, then view 1's, ...); saliency [..., V, N] -> [..., N] float32, the
    views' mean (each view first rescaled to [0, 1] with `min_max`)."""
    features = np.moveaxis(features, -3, -2)
    features = np.ascontiguousarray(features.reshape(*features.shape[:-2], -1))
    saliency = saliency if saliency_distribution == "reference" else min_max_per_view(saliency)
    return saliency.mean(axis=-2, dtype=np.float32), features


def min_max_per_view(saliency: np.ndarray) -> np.ndarray:
    """[..., V, N] -> each view rescaled to [0, 1] over its points (a constant view becomes all 0)."""
    low, high = saliency.min(axis=-1, keepdims=True), saliency.max(axis=-1, keepdims=True)
    return ((saliency - low) / np.maximum(high - low, np.finfo(np.float32).tiny)).astype(np.float32)


def scale_and_translate(points: np.ndarray, rng: np.random.Generator, scale_range: tuple[float, float],
                        translate: float) -> np.ndarray:
    """[B, N, 3] -> each cloud scaled per axis and shifted, as Point-M2AE's PointcloudScaleAndTranslate.
    Only for runs without views2d data: the views were projected from the unaugmented cloud, and both
    transforms change its depth images (pretrain's params reject the combination)."""
    scale = rng.uniform(*scale_range, size=(len(points), 1, 3))
    shift = rng.uniform(-translate, translate, size=(len(points), 1, 3))
    return (points * scale + shift).astype(np.float32)


def streamed_batch(samples: list[dict[str, np.ndarray]], rng: np.random.Generator, scale_range: tuple[float, float],
                   translate: float) -> MAEBatch:
    """A batch of streamed objects (training/object_samples.py), in stream order."""
    stack = lambda name: np.stack([sample[name] for sample in samples]) if name in samples[0] else None  # noqa: E731
    return stacked_batch(stack("points"), stack("saliency"), stack("features"), rng, scale_range, translate)


def stacked_batch(points: np.ndarray, saliency: np.ndarray | None, features: np.ndarray | None,
                  rng: np.random.Generator, scale_range: tuple[float, float], translate: float) -> MAEBatch:
    return MAEBatch(
        points=torch.from_numpy(scale_and_translate(points, rng, scale_range, translate)),
        saliency=None if saliency is None else torch.from_numpy(np.ascontiguousarray(saliency)),
        features=None if features is None else torch.from_numpy(np.ascontiguousarray(features)),
    )
