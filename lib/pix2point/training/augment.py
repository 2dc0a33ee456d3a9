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


@dataclass(frozen=True)
class PairCrop:
    """SLidR's ResizedCrop (utils/transforms.py, config crop_ratio): a random window of the color image, its
    area a uniform share `area` of the image and its width / height log-uniform in `ratio`, redrawn until
    more than `min_pairs` pairs, or more than `min_fraction` of them, fall inside it."""

    area: tuple[float, float] = (0.3, 1.0)
    ratio: tuple[float, float] = (14 / 9, 17 / 9)
    min_pairs: int = 1024
    min_fraction: float = 0.75
    attempts: int = 100  # SLidR redraws without end; after this many the whole image is the window


def crop_window(image_size: tuple[int, int], rng: np.random.Generator, crop: PairCrop) -> tuple[int, int, int, int]:
    """(left, top, width, height) in pixels of a window of a (width, height) image, drawn as torchvision's
    RandomResizedCrop.get_params (the one SLidR calls): 10 tries at the area and ratio, else a centred window
    of the image's own ratio clamped into `crop.ratio`."""
    width, height = image_size
    for _ in range(10):
        area = width * height * rng.uniform(*crop.area)
        ratio = np.exp(rng.uniform(*np.log(crop.ratio)))
        w, h = int(round(np.sqrt(area * ratio))), int(round(np.sqrt(area / ratio)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    ratio = np.clip(width / height, *crop.ratio)
    w, h = (width, int(round(width / ratio))) if width / height > ratio else (int(round(height * ratio)), height)
    w, h = min(w, width), min(h, height)
    return (width - w) // 2, (height - h) // 2, w, h


def pairs_in_crop(pixels: np.ndarray, image_size: tuple[int, int], rng: np.random.Generator,
                  crop: PairCrop) -> np.ndarray:
    """Indices of the [P, 2] (u, v) pairs inside a crop_window that keeps enough of them (see PairCrop)."""
    for _ in range(crop.attempts):
        left, top, w, h = crop_window(image_size, rng, crop)
        inside = ((pixels[:, 0] >= left) & (pixels[:, 0] < left + w) & (pixels[:, 1] >= top) & (pixels[:, 1] < top + h))
        kept = int(inside.sum())
        if kept > crop.min_pairs or kept > crop.min_fraction * len(pixels):
            return np.flatnonzero(inside)
    return np.arange(len(pixels))


def cuboid_dropped(xyz: np.ndarray, rng: np.random.Generator, min_kept: int) -> np.ndarray:
    """[P] bool, False for points strictly inside one random axis-aligned cuboid: centred on a random point,
    its half-extent a uniform share in [0, 0.1) of the cloud's extent per axis (SLidR's DropCuboids). All
    True when fewer than `min_kept` points would remain (SLidR then keeps the cloud whole)."""
    extent = xyz.max(axis=0) - xyz.min(axis=0)
    half = extent * rng.random() * 0.2 / 2
    centre = xyz[rng.integers(len(xyz))]
    keep = ~np.all((xyz > centre - half) & (xyz < centre + half), axis=1)
    return keep if keep.sum() >= min_kept else np.ones(len(xyz), bool)
