"""Which scene points an RGB-D frame sees, and at which pixel of its color image.

A point is seen by a frame when, projected with the depth camera, it lands inside the depth image on
a pixel whose measured depth agrees with the point's own depth (`DepthAgreement`): a point behind a
wall lands on a pixel that measured the wall, and a pixel with depth 0 measured nothing. A seen point
is then projected with the color intrinsics (ScanNet registers depth to color: same pose, different
intrinsics and image size) and kept if it lands inside the color image.

Rounding: pixel centres lie at integer coordinates (see camera.py), so a continuous coordinate c falls
in pixel floor(c + 0.5), the nearest centre, with exact halves going to the higher index. An image
W pixels wide thus covers c in [-0.5, W - 0.5). The same rule picks the depth pixel whose measurement
a point is compared with (no interpolation: interpolating across a depth edge invents depths that
belong to neither surface) and the color pixel a seen point is paired with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pix2point.geometry.camera import project, world_to_camera

DEPTH_LOOKUP_RULE = "nearest depth pixel, index floor(coordinate + 0.5), pixel centres at integer coordinates"
PIXEL_ROUNDING_RULE = "nearest color pixel, index floor(coordinate + 0.5), pixel centres at integer coordinates"


class FrameGeometry(Protocol):
    """What visibility needs of an RGB-D frame (a frames-table row, io/scenes_table.py `Frame`, has it)."""

    pose: np.ndarray  # [4, 4] camera-to-world
    color_intrinsics: np.ndarray  # [3, 3]
    color_size: tuple[int, int]  # (width, height)
    depth_intrinsics: np.ndarray  # [3, 3]


@dataclass(frozen=True)
class DepthAgreement:
    """When a point at camera depth z counts as the surface measured as depth d at its depth pixel.

    Seen iff 0 < z <= max_depth, d > 0 and |z - d| <= tolerance + relative_tolerance * d. The
    relative term follows structured-light sensors, whose depth noise grows with distance, so one
    absolute tolerance is either too strict far away or lets occluded points through close up.
    """

    tolerance: float  # metres
    relative_tolerance: float  # share of the measured depth
    max_depth: float  # metres

    def agrees(self, point_depth: np.ndarray, measured_depth: np.ndarray) -> np.ndarray:
        allowed = self.tolerance + self.relative_tolerance * measured_depth
        in_range = (point_depth > 0) & (point_depth <= self.max_depth)
        return in_range & (measured_depth > 0) & (np.abs(point_depth - measured_depth) <= allowed)


def pixels_inside(coordinates: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Continuous [N, 2] (u, v) -> ([N] inside mask, [M, 2] int64 (column, row) pixels of the inside ones).

    Non-finite coordinates count as outside.
    """
    # Column by column: reductions over a trailing axis of 2 cost several times more in numpy.
    cols, rows = np.floor(coordinates[:, 0] + 0.5), np.floor(coordinates[:, 1] + 0.5)
    inside = (cols >= 0) & (cols < size[0]) & (rows >= 0) & (rows < size[1])
    return inside, np.stack([cols[inside], rows[inside]], axis=1).astype(np.int64)


def seen_in_depth(points_camera: np.ndarray, depth_m: np.ndarray, depth_intrinsics: np.ndarray,
                  rule: DepthAgreement) -> np.ndarray:
    """Indices into `points_camera` [N, 3] of the points the depth image [H, W] (metres) confirms."""
    # Projecting every point and testing depth afterwards beats selecting points in front first: the
    # image bounds discard most points in one pass, and the rule rejects those behind the camera
    # (which project through the centre onto mirrored pixels).
    coordinates, point_depth = project(points_camera, depth_intrinsics)
    height, width = depth_m.shape
    inside, pixels = pixels_inside(coordinates, (width, height))
    candidates = np.flatnonzero(inside)
    measured = depth_m[pixels[:, 1], pixels[:, 0]]
    return candidates[rule.agrees(point_depth[candidates], measured)]


def frame_correspondences(points_world: np.ndarray, frame: FrameGeometry, depth_m: np.ndarray,
                          rule: DepthAgreement) -> tuple[np.ndarray, np.ndarray]:
    """Points of the scene [N, 3] seen by `frame`: ([P] int64 point indices, [P, 2] int64 color pixels (u, v)).

    `depth_m` is the frame's depth image in metres. Indices come out in increasing order.
    """
    # float32 halves the memory traffic of the per-frame transform of every scene point; at scene
    # scale (tens of metres) it still resolves well under a millimetre.
    points_camera = world_to_camera(points_world, frame.pose.astype(points_world.dtype))
    seen = seen_in_depth(points_camera, depth_m, frame.depth_intrinsics, rule)
    coordinates, _ = project(points_camera[seen], frame.color_intrinsics)
    inside, pixels = pixels_inside(coordinates, frame.color_size)
    return seen[inside], pixels
