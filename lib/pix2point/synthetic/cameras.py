"""The synthetic RGB-D sensor: colour and depth intrinsics, and the camera's path through the room."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pix2point.geometry.camera import intrinsics_matrix, look_at, pixel_rays

# As in ScanNet, the depth camera is registered to the colour camera (same pose, about the same field
# of view) but has its own resolution and calibration. The principal points sit off-centre on
# opposite sides, so code that applies the colour intrinsics to depth (or scales one into the
# other) lands pixels several rows and columns off.
COLOR_FOCAL_PER_WIDTH, COLOR_PRINCIPAL_FRACTION = 0.90, (0.515, 0.485)
DEPTH_FOCAL_PER_WIDTH, DEPTH_PRINCIPAL_FRACTION = 0.87, (0.48, 0.52)

# The path keeps clear of furniture by construction: only cabinets and bookshelves stand taller than
# 1.05 m, and they are at most 0.6 m deep against a wall; everything else stays below the path.
WALL_MARGIN = 0.95  # metres from the walls to the path
EYE_HEIGHT, EYE_HEIGHT_SWING = 1.5, 0.15
TARGET_HEIGHT, TARGET_HEIGHT_SWING = 0.9, 0.4  # low views see the floor, high ones the tops of the walls


@dataclass(frozen=True)
class Camera:
    intrinsics: np.ndarray  # [3, 3]
    size: tuple[int, int]  # (width, height)

    @cached_property
    def rays(self) -> np.ndarray:
        """[H * W, 3] camera-frame directions through the pixel centres in row-major order, z = 1
        (so the distance along a ray is the pixel's depth); computed once, shared by all frames."""
        return pixel_rays(*self.size, self.intrinsics).reshape(-1, 3)


def _intrinsics(size: tuple[int, int], focal_per_width: float, principal_fraction: tuple[float, float]) -> np.ndarray:
    width, height = size
    focal = focal_per_width * width
    return intrinsics_matrix(focal, focal, principal_fraction[0] * width, principal_fraction[1] * height)


def color_camera(size: tuple[int, int]) -> Camera:
    return Camera(_intrinsics(size, COLOR_FOCAL_PER_WIDTH, COLOR_PRINCIPAL_FRACTION), size)


def depth_camera(size: tuple[int, int]) -> Camera:
    return Camera(_intrinsics(size, DEPTH_FOCAL_PER_WIDTH, DEPTH_PRINCIPAL_FRACTION), size)


def camera_path(room_size: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """[frames, 4, 4] camera-to-world poses on one loop around the room, each looking across it.

    Every wall is then seen from the opposite side of the loop, and the swinging view direction and
    distance sweep the floor and furniture in between.
    """
    start, turn, swing_phase = rng.uniform(0, 2 * np.pi), rng.choice([-1.0, 1.0]), rng.uniform(0, 2 * np.pi)
    angles = start + turn * 2 * np.pi * np.arange(frames) / frames
    centre, half = room_size[:2] / 2, room_size[:2] / 2
    eyes_xy = centre + (half - WALL_MARGIN) * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    eyes_z = EYE_HEIGHT + EYE_HEIGHT_SWING * np.sin(3 * angles + swing_phase)
    look_angles = angles + np.pi + 0.6 * np.sin(2 * angles + swing_phase)
    reach = 0.45 + 0.35 * np.sin(5 * angles + swing_phase)  # fraction of the way to the opposite wall
    targets_xy = centre + reach[:, None] * (half - 0.3) * np.stack([np.cos(look_angles), np.sin(look_angles)], axis=1)
    eyes = np.column_stack([eyes_xy, eyes_z])
    targets_z = TARGET_HEIGHT + TARGET_HEIGHT_SWING * np.sin(4 * angles + 2 * swing_phase)
    targets = np.column_stack([targets_xy, targets_z])
    return np.stack([look_at(eye, target) for eye, target in zip(eyes, targets)])
