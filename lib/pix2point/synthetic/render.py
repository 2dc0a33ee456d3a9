"""Colour and depth images of a layout, by casting one ray through every pixel centre."""

from __future__ import annotations

import numpy as np

from pix2point.synthetic.boxes import describe_surface
from pix2point.synthetic.cameras import Camera
from pix2point.synthetic.layout import SceneLayout
from pix2point.synthetic.raycast import cast_rays
from pix2point.synthetic.shading import shade

OPEN_CEILING_RGB = np.array([0.86, 0.87, 0.9], np.float32)  # what a pixel shows where a ray leaves the room upwards


def _cast_pixels(layout: SceneLayout, camera: Camera, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> ([R, 3] world ray directions, [R] depth (inf: nothing seen), [R] box hit), pixels in row-major order."""
    directions = camera.rays @ pose[:3, :3].T
    depth, box = cast_rays(pose[:3, 3], directions, layout.boxes)
    return directions, depth, box


def render_depth(layout: SceneLayout, camera: Camera, pose: np.ndarray) -> np.ndarray:
    """[H, W] float64 depth in metres along the camera z axis, 0 where no surface is seen."""
    _, depth, _ = _cast_pixels(layout, camera, pose)
    width, height = camera.size
    return np.where(np.isfinite(depth), depth, 0.0).reshape(height, width)


def render_color(layout: SceneLayout, camera: Camera, pose: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 RGB."""
    directions, depth, box = _cast_pixels(layout, camera, pose)
    seen = np.isfinite(depth)
    points = pose[:3, 3] + directions[seen] * depth[seen, None].astype(np.float64)
    rgb = np.broadcast_to(OPEN_CEILING_RGB, (len(depth), 3)).copy()
    rgb[seen] = shade(describe_surface(points, layout.boxes, box[seen]), layout.materials)
    width, height = camera.size
    return np.round(rgb * 255).astype(np.uint8).reshape(height, width, 3)
