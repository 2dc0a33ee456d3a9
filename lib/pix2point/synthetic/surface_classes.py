"""The semantic classes of the synthetic scenes and how each one looks.

Every class wears its own real photograph (shipped with scikit-image, loaded offline) so that an
ImageNet teacher's features tell the classes apart, as they would on real ScanNet surfaces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from skimage import data

from pix2point.synthetic.textures import photo_texture


@dataclass(frozen=True)
class SurfaceClass:
    nyu40_id: int
    name: str
    palette_rgb: tuple[int, int, int]  # ScanNet's colour for the class in *_vh_clean_2.labels.ply
    photo: Callable[[], np.ndarray]
    tint: tuple[float, float, float]  # colours grey photos and shifts colour ones
    tile_metres: float  # side of one texture tile on the surface


WALL = SurfaceClass(1, "wall", (174, 199, 232), data.brick, (1.0, 0.86, 0.74), 1.2)
FLOOR = SurfaceClass(2, "floor", (152, 223, 138), data.gravel, (0.78, 0.68, 0.56), 0.9)
CABINET = SurfaceClass(3, "cabinet", (31, 119, 180), data.coffee, (1.0, 1.0, 1.0), 0.7)
BED = SurfaceClass(4, "bed", (255, 187, 120), data.chelsea, (1.0, 1.0, 1.0), 0.9)
CHAIR = SurfaceClass(5, "chair", (188, 189, 34), data.immunohistochemistry, (1.0, 1.0, 1.0), 0.4)
SOFA = SurfaceClass(6, "sofa", (140, 86, 75), data.rocket, (1.0, 1.0, 1.0), 0.8)
TABLE = SurfaceClass(7, "table", (255, 152, 150), data.retina, (1.0, 1.0, 1.0), 0.6)
BOOKSHELF = SurfaceClass(10, "bookshelf", (148, 103, 189), data.text, (0.72, 0.82, 1.0), 0.5)
DESK = SurfaceClass(14, "desk", (247, 182, 210), data.coins, (1.0, 0.84, 0.55), 0.5)

SURFACE_CLASSES = (WALL, FLOOR, CABINET, BED, CHAIR, SOFA, TABLE, BOOKSHELF, DESK)


def class_index(surface_class: SurfaceClass) -> int:
    return SURFACE_CLASSES.index(surface_class)


@lru_cache(maxsize=1)
def texture_stack() -> np.ndarray:
    """[len(SURFACE_CLASSES), S, S, 3] float32 textures, built once per process (photo decoding is the slow part)."""
    stack = np.stack([photo_texture(c.photo(), c.tint) for c in SURFACE_CLASSES])
    stack.flags.writeable = False
    return stack


def nyu40_ids() -> np.ndarray:
    return np.array([c.nyu40_id for c in SURFACE_CLASSES], np.uint16)


def palette() -> np.ndarray:
    return np.array([c.palette_rgb for c in SURFACE_CLASSES], np.uint8)
