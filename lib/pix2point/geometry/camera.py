"""Pinhole camera geometry in the ScanNet / OpenCV convention: x right, y down, z forward (metres).

Poses are camera-to-world 4x4 matrices; intrinsics are 3x3 matrices K. Pixel (u, v) = column, row,
with the centre of the top-left pixel at (0, 0).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

# How a low-resolution map is upsampled to image pixels (pixel_sampling.py), named here so that params can
# use it without importing torch: torch.nn.functional.interpolate's modes of the same names.
Interpolation = Literal["bilinear", "bicubic"]


def transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4x4 rigid transform to [N, 3] points."""
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def world_to_camera(points_world: np.ndarray, camera_to_world: np.ndarray) -> np.ndarray:
    rotation, translation = camera_to_world[:3, :3], camera_to_world[:3, 3]
    # Inverse of a rigid transform without a general inverse: R^T (p - t).
    return (points_world - translation) @ rotation


def project(points_camera: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, 3] camera-frame points -> ([N, 2] continuous pixel coordinates (u, v), [N] depth z).

    Points with z <= 0 get non-finite coordinates; callers mask them with `depth > 0`.
    """
    depth = points_camera[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intrinsics[0, 0] * points_camera[:, 0] / depth + intrinsics[0, 2]
        v = intrinsics[1, 1] * points_camera[:, 1] / depth + intrinsics[1, 2]
    return np.stack([u, v], axis=1), depth


def backproject(pixels: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pixels [N, 2] (u, v) with depth [N] -> [N, 3] camera-frame points."""
    x = (pixels[:, 0] - intrinsics[0, 2]) * depth / intrinsics[0, 0]
    y = (pixels[:, 1] - intrinsics[1, 2]) * depth / intrinsics[1, 1]
    return np.stack([x, y, depth], axis=1)


def depth_image_to_points(depth_m: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Back-project every pixel with depth > 0: returns ([N, 3] camera-frame points, [N, 2] pixels)."""
    rows, cols = np.nonzero(depth_m > 0)
    pixels = np.stack([cols, rows], axis=1).astype(np.float64)
    return backproject(pixels, depth_m[rows, cols], intrinsics), pixels


def pixel_rays(width: int, height: int, intrinsics: np.ndarray) -> np.ndarray:
    """[H, W, 3] camera-frame ray directions through pixel centres, with z = 1 (so t along a ray is depth)."""
    cols, rows = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    x = (cols - intrinsics[0, 2]) / intrinsics[0, 0]
    y = (rows - intrinsics[1, 2]) / intrinsics[1, 1]
    return np.stack([x, y, np.ones_like(x)], axis=-1)


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def scale_intrinsics(intrinsics: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """Intrinsics of the same camera with its image resized by (scale_x, scale_y)."""
    scaled = intrinsics.copy()
    scaled[0, 0] *= scale_x
    scaled[0, 2] = (intrinsics[0, 2] + 0.5) * scale_x - 0.5
    scaled[1, 1] *= scale_y
    scaled[1, 2] = (intrinsics[1, 2] + 0.5) * scale_y - 0.5
    return scaled


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """Camera-to-world pose of a camera at `eye` looking at `target`, with world `up` pointing up in the image."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose
