"""Augmentations for pretraining: 3D (rotation about the up axis, scaling, elastic distortion) and the pixel
columns of a 2D flip."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import RegularGridInterpolator
from scipy.ndimage import gaussian_filter


@dataclass(frozen=True)
class PointAugmentation:
    rotate_up: bool = True  # any angle about z (ScanNet's up axis)
    scale_range: tuple[float, float] = (0.9, 1.1)
    elastic: bool = False  # PointContrast's elastic distortion at (0.2, 0.4) and (0.8, 1.6) metres


def augment_points(xyz: np.ndarray, rng: np.random.Generator, augmentation: PointAugmentation) -> np.ndarray:
    xyz = xyz.astype(np.float32, copy=True)
    if augmentation.rotate_up:
        xyz = xyz @ rotation_about_z(rng.uniform(0, 2 * np.pi)).T
    xyz *= np.float32(rng.uniform(*augmentation.scale_range))
    if augmentation.elastic:
        for granularity, magnitude in ((0.2, 0.4), (0.8, 1.6)):
            xyz = elastic_distortion(xyz, granularity, magnitude, rng)
    return xyz


def rotation_about_z(angle: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], np.float32)


def elastic_distortion(xyz: np.ndarray, granularity: float, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random displacement field (noise on a coarse grid, Gaussian-blurred, interpolated at the points)."""
    low = xyz.min(0) - 3 * granularity
    cells = ((xyz.max(0) - low) // granularity).astype(int) + 4
    noise = rng.standard_normal((*cells, 3)).astype(np.float32)
    for _ in range(2):
        noise = gaussian_filter(noise, sigma=(1, 1, 1, 0), mode="nearest")
    axes = [low[d] + granularity * np.arange(cells[d]) for d in range(3)]
    interpolate = RegularGridInterpolator(axes, noise, bounds_error=False, fill_value=0.0)
    return xyz + interpolate(xyz).astype(np.float32) * magnitude


def mirror_columns(u: np.ndarray, image_width: int) -> np.ndarray:
    """Pixel columns after mirroring a `image_width`-wide image left to right: u -> width - 1 - u.

    With pixel centres at integer coordinates this is exact on the image and, under the half-pixel
    convention, on any resized copy of it (SLidR utils/transforms.py, FlipHorizontal)."""
    return (image_width - 1 - u).astype(u.dtype)
