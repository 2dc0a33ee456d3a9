"""The clouds Point-M2AE / I2P-MAE fine-tuning sees (ZrrSkywalker/I2P-MAE tools/runner_finetune.py):

- training: each object's farthest-point-sampled pool (`pool_size` points), a random `points` of them, then
  the augmentation: per-axis scale and translation (PointcloudScaleAndTranslate) and, for ScanObjectNN, a
  rotation about the up axis (PointcloudRotate, any angle);
- test: the object farthest-point-sampled down to `points` (misc.fps);
- voting: `votes` copies per test object, each a random `points` of its pool scaled per axis in (2/3, 3/2)
  and shifted by up to 0.2 (the reference's test_transforms); the model's logits are averaged over them.

Objects come from the `objects` artefact: normalised into the unit sphere, so shifts are in object radii.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from pix2point.models.point_groups import farthest_point_sample
from pix2point.training.i2p_mae_data import scale_and_translate


@dataclass(frozen=True)
class CloudAugmentation:
    """Defaults: the reference's ScanObjectNN fine-tuning; ModelNet40's is (2/3, 3/2), 0.2, no rotation."""

    scale_range: tuple[float, float] = (0.9, 1.1)  # per axis
    translate: float = 0.0  # uniform in [-t, t] per axis
    rotate_axis: int | None = 1  # any angle about this axis (0, 1, 2 = x, y, z); None: no rotation


def pool_size(points: int, available: int) -> int:
    """The reference's FPS pool for `points` sampled points: 1200 for 1024, 2400 for 2048, 4800 for 4096
    (75/64 of them), at most the object's `available` points."""
    return min(available, math.ceil(points * 75 / 64))


def fps_pools(clouds: np.ndarray, size: int, batch_size: int = 64) -> np.ndarray:
    """[M, N, 3] -> [M, size] int64 indices of each cloud's farthest-point-sampled pool (deterministic: FPS
    starts at point 0). A pool of all N points is every index: which order it has does not matter, since the
    samples drawn from it are random subsets in random order."""
    count, available = clouds.shape[:2]
    if size == available:
        return np.broadcast_to(np.arange(available), (count, available)).copy()
    chunks = [farthest_point_sample(torch.from_numpy(np.ascontiguousarray(clouds[start:start + batch_size])), size)
              for start in range(0, count, batch_size)]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, size), np.int64)


def random_subsets(clouds: np.ndarray, pools: np.ndarray, points: int, rng: np.random.Generator) -> np.ndarray:
    """[B, N, 3] clouds and [B, P] pools -> [B, points, 3] float32: per cloud `points` of its pool, drawn
    without replacement in random order."""
    picks = np.stack([rng.choice(pool, size=points, replace=False) for pool in pools])
    return np.take_along_axis(clouds, picks[..., None], axis=1).astype(np.float32)


def augment_clouds(clouds: np.ndarray, rng: np.random.Generator, augmentation: CloudAugmentation) -> np.ndarray:
    """[B, n, 3] -> scaled and shifted per cloud and axis, then rotated about `rotate_axis` (a new array)."""
    out = scale_and_translate(clouds, rng, augmentation.scale_range, augmentation.translate)
    if augmentation.rotate_axis is None:
        return out
    axes = np.zeros((len(out), 3))
    axes[:, augmentation.rotate_axis] = rng.uniform(-np.pi, np.pi, size=len(out))
    matrices = Rotation.from_rotvec(axes).as_matrix().astype(np.float32)  # [B, 3, 3]
    return np.einsum("bij,bnj->bni", matrices, out).astype(np.float32)


def training_clouds(clouds: np.ndarray, pools: np.ndarray, points: int, rng: np.random.Generator,
                    augmentation: CloudAugmentation) -> torch.Tensor:
    """One training batch: [B, N, 3] objects and their [B, P] pools -> [B, points, 3] float32."""
    return torch.from_numpy(augment_clouds(random_subsets(clouds, pools, points, rng), rng, augmentation))


def evaluation_clouds(clouds: np.ndarray, points: int) -> np.ndarray:
    """[M, N, 3] -> [M, points, 3]: each object farthest-point-sampled down to `points` (all of it when N is
    `points`: FPS of all points only reorders them, from point 0 as the encoder's own grouping starts)."""
    if points == clouds.shape[1]:
        return clouds.astype(np.float32, copy=False)
    pools = fps_pools(clouds, points)
    return np.take_along_axis(clouds, pools[..., None], axis=1).astype(np.float32)


def vote_copies(clouds: np.ndarray, pools: np.ndarray, points: int, rng: np.random.Generator,
                scale_range: tuple[float, float], translate: float) -> np.ndarray:
    """One voting copy of every test object: [M, points, 3], a random subset of its pool, scaled and shifted."""
    return scale_and_translate(random_subsets(clouds, pools, points, rng), rng, scale_range, translate)
