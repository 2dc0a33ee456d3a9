"""Floor footprints of furniture (rectangles rotated about z) and the tests that keep them apart."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Footprint:
    centre: np.ndarray  # [2] world xy
    half_size: np.ndarray  # [2] along the object's local x, y
    yaw: float

    def axes(self) -> np.ndarray:
        """[2, 2] rows: the rectangle's local x and y directions in world xy."""
        cos, sin = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[cos, sin], [-sin, cos]])

    def corners(self) -> np.ndarray:
        signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
        return self.centre + (signs * self.half_size) @ self.axes()


def overlap(a: Footprint, b: Footprint, clearance: float) -> bool:
    """Whether the rectangles come closer than `clearance` (separating-axis test on both rectangles' axes)."""
    axes = np.concatenate([a.axes(), b.axes()])
    proj_a, proj_b = a.corners() @ axes.T, b.corners() @ axes.T  # [4 corners, 4 axes]
    separated = (proj_a.max(0) + clearance <= proj_b.min(0)) | (proj_b.max(0) + clearance <= proj_a.min(0))
    return not separated.any()


def inside_room(footprint: Footprint, room_xy: np.ndarray) -> bool:
    corners = footprint.corners()
    tolerance = 1e-9  # pieces against a wall touch it exactly
    return bool(np.all(corners >= -tolerance) and np.all(corners <= room_xy + tolerance))
