"""Colour of a surface point: its class texture under a fixed light.

Colour depends only on the point and its face, never on the camera, so a point has the same colour
in every frame and in the scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pix2point.synthetic.boxes import SurfacePoints
from pix2point.synthetic.surface_classes import SURFACE_CLASSES, texture_stack
from pix2point.synthetic.textures import sample_textures

LIGHT_DIRECTION = np.array([0.35, 0.55, 1.0]) / np.linalg.norm([0.35, 0.55, 1.0])
AMBIENT = 0.62  # the rest of the light is diffuse; faces turned from the light keep this share


@dataclass(frozen=True)
class Materials:
    """One material per object (and one for the walls, one for the floor)."""

    surface_class: np.ndarray  # [M] index into SURFACE_CLASSES
    texture_offsets: np.ndarray  # [M, 2] tile units, so two chairs do not show the same patch
    brightness: np.ndarray  # [M] per-object light variation

    @staticmethod
    def random(surface_class: np.ndarray, rng: np.random.Generator) -> Materials:
        count = len(surface_class)
        return Materials(surface_class, rng.uniform(0.0, 2.0, (count, 2)), rng.uniform(0.9, 1.08, count))


def shade(surface: SurfacePoints, materials: Materials) -> np.ndarray:
    """[N, 3] float32 RGB in [0, 1]."""
    classes = materials.surface_class[surface.materials]
    tile_metres = np.array([c.tile_metres for c in SURFACE_CLASSES])[classes]
    coords = surface.uv / tile_metres[:, None] + materials.texture_offsets[surface.materials]
    albedo = sample_textures(texture_stack(), classes, coords)
    diffuse = np.clip(surface.normals @ LIGHT_DIRECTION, 0.0, None)
    light = (AMBIENT + (1.0 - AMBIENT) * diffuse) * materials.brightness[surface.materials]
    return np.clip(albedo * light[:, None].astype(np.float32), 0.0, 1.0)
