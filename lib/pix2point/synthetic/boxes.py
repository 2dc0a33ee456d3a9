"""Boxes rotated about the world z axis: the only primitive the synthetic scenes are built from.

A box is solid (furniture: rays hit its outside) or interior (the room: rays from inside hit its
walls and floor; it has no ceiling, so the cameras look in as in a ScanNet reconstruction).
Each face carries a material; opposite faces share one, so materials are stored per local axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Boxes:
    centres: np.ndarray  # [B, 3] world
    half_sizes: np.ndarray  # [B, 3] along the box's local axes
    yaws: np.ndarray  # [B] rotation about world z, radians
    materials: np.ndarray  # [B, 3] material of the faces normal to local x, y, z
    interior: np.ndarray  # [B] bool: seen from inside (the room) rather than from outside

    def __len__(self) -> int:
        return len(self.yaws)

    def select(self, index: np.ndarray) -> Boxes:
        return Boxes(self.centres[index], self.half_sizes[index], self.yaws[index], self.materials[index], self.interior[index])

    @staticmethod
    def concatenate(parts: list[Boxes]) -> Boxes:
        return Boxes(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("centres", "half_sizes", "yaws", "materials", "interior")))


def rotate_about_z(vectors: np.ndarray, yaw: float | np.ndarray) -> np.ndarray:
    """[N, 3] vectors rotated about z by `yaw` (one angle, or one per vector)."""
    cos, sin = np.cos(yaw), np.sin(yaw)
    x, y = vectors[:, 0], vectors[:, 1]
    return np.stack([cos * x - sin * y, sin * x + cos * y, vectors[:, 2]], axis=1)


def to_local(points: np.ndarray, boxes: Boxes, box_index: np.ndarray | int) -> np.ndarray:
    """World points [N, 3] -> coordinates in the frame of box `box_index[n]` (or of one box), origin at its centre."""
    return rotate_about_z(points - boxes.centres[box_index], -boxes.yaws[box_index])


def to_world(local_points: np.ndarray, boxes: Boxes, box_index: np.ndarray) -> np.ndarray:
    return rotate_about_z(local_points, boxes.yaws[box_index]) + boxes.centres[box_index]


def inside_any(points: np.ndarray, boxes: Boxes, margin: float, excluded: np.ndarray) -> np.ndarray:
    """[N] whether point n lies inside some box grown by `margin` (shrunk if negative), other than box `excluded[n]`."""
    found = np.zeros(len(points), bool)
    for index in range(len(boxes)):
        local = to_local(points, boxes, index)
        found |= np.all(np.abs(local) <= boxes.half_sizes[index] + margin, axis=1) & (excluded != index)
    return found


@dataclass(frozen=True)
class SurfacePoints:
    """Points on box faces with what shading needs: the same record for rendered pixels and scan points."""

    points: np.ndarray  # [N, 3] world
    normals: np.ndarray  # [N, 3] world, pointing to the side the surface is seen from
    uv: np.ndarray  # [N, 2] metres in the face's plane, from one corner of the face
    materials: np.ndarray  # [N]


def describe_surface(points: np.ndarray, boxes: Boxes, box_index: np.ndarray) -> SurfacePoints:
    """Face frame of world `points` that lie on faces of boxes `box_index`."""
    local = to_local(points, boxes, box_index)
    half = boxes.half_sizes[box_index]
    # The face a point lies on is the axis where it is closest (relative to the box size) to the bound.
    axis = np.argmax(np.abs(local) / half, axis=1)
    rows = np.arange(len(points))
    outward = np.sign(local[rows, axis])
    facing = np.where(boxes.interior[box_index], -outward, outward)
    local_normals = np.zeros_like(local)
    local_normals[rows, axis] = facing
    normals = rotate_about_z(local_normals, boxes.yaws[box_index])
    in_plane = np.array([[1, 2], [0, 2], [0, 1]])[axis]
    uv = np.take_along_axis(local + half, in_plane, axis=1)
    return SurfacePoints(points, normals, uv, boxes.materials[box_index, axis])
