"""Furniture kinds: their class, plausible sizes in metres, and the boxes each piece is made of.

Parts are given in the object's frame: footprint centred on the origin, standing on z = 0, its back
towards -y (the side that goes against a wall).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pix2point.synthetic.surface_classes import BED, BOOKSHELF, CABINET, CHAIR, DESK, SOFA, TABLE, SurfaceClass

Parts = tuple[np.ndarray, np.ndarray]  # ([P, 3] centres, [P, 3] half sizes)


def _box(x0: float, y0: float, z0: float, x1: float, y1: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    low, high = np.array([x0, y0, z0]), np.array([x1, y1, z1])
    return (low + high) / 2, (high - low) / 2


def _stack(*boxes: tuple[np.ndarray, np.ndarray]) -> Parts:
    return np.array([b[0] for b in boxes]), np.array([b[1] for b in boxes])


def _legs(width: float, depth: float, height: float, thickness: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Four square legs in the corners of the footprint."""
    xs = ((-width / 2, -width / 2 + thickness), (width / 2 - thickness, width / 2))
    ys = ((-depth / 2, -depth / 2 + thickness), (depth / 2 - thickness, depth / 2))
    return [_box(x0, y0, 0.0, x1, y1, height) for x0, x1 in xs for y0, y1 in ys]


def solid_block(width: float, depth: float, height: float) -> Parts:
    return _stack(_box(-width / 2, -depth / 2, 0.0, width / 2, depth / 2, height))


def table_parts(width: float, depth: float, height: float) -> Parts:
    top = 0.04
    return _stack(_box(-width / 2, -depth / 2, height - top, width / 2, depth / 2, height), *_legs(width, depth, height - top, 0.05))


def desk_parts(width: float, depth: float, height: float) -> Parts:
    top, panel = 0.03, 0.03
    return _stack(
        _box(-width / 2, -depth / 2, height - top, width / 2, depth / 2, height),
        _box(-width / 2, -depth / 2, 0.0, -width / 2 + panel, depth / 2, height - top),
        _box(width / 2 - panel, -depth / 2, 0.0, width / 2, depth / 2, height - top),
    )


def chair_parts(width: float, depth: float, height: float) -> Parts:
    seat_height, seat, back = 0.45, 0.05, 0.05
    return _stack(
        _box(-width / 2, -depth / 2, seat_height - seat, width / 2, depth / 2, seat_height),
        _box(-width / 2, -depth / 2, seat_height, width / 2, -depth / 2 + back, height),
        *_legs(width, depth, seat_height - seat, 0.04),
    )


def bed_parts(width: float, depth: float, height: float) -> Parts:
    headboard = 0.06
    return _stack(
        _box(-width / 2, -depth / 2 + headboard, 0.0, width / 2, depth / 2, height),
        _box(-width / 2, -depth / 2, 0.0, width / 2, -depth / 2 + headboard, height + 0.45),
    )


def sofa_parts(width: float, depth: float, height: float) -> Parts:
    seat_height, back, arm, arm_height = 0.42, 0.2, 0.18, height - 0.2
    return _stack(
        _box(-width / 2 + arm, -depth / 2 + back, 0.0, width / 2 - arm, depth / 2, seat_height),
        _box(-width / 2, -depth / 2, 0.0, width / 2, -depth / 2 + back, height),
        _box(-width / 2, -depth / 2 + back, 0.0, -width / 2 + arm, depth / 2, arm_height),
        _box(width / 2 - arm, -depth / 2 + back, 0.0, width / 2, depth / 2, arm_height),
    )


@dataclass(frozen=True)
class FurnitureKind:
    surface_class: SurfaceClass
    min_size: tuple[float, float, float]  # (width, depth, height) metres
    max_size: tuple[float, float, float]
    against_wall: bool
    parts: Callable[[float, float, float], Parts]

    def random_size(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.min_size, self.max_size)


# Only pieces at most 0.6 m deep against a wall may reach above 1.05 m: the camera path relies on
# it (see cameras.py).
BED_KIND = FurnitureKind(BED, (1.4, 2.0, 0.45), (1.9, 2.2, 0.6), True, bed_parts)
SOFA_KIND = FurnitureKind(SOFA, (1.6, 0.8, 0.75), (2.2, 0.95, 0.9), True, sofa_parts)
CABINET_KIND = FurnitureKind(CABINET, (0.6, 0.4, 0.8), (1.2, 0.6, 2.0), True, solid_block)
BOOKSHELF_KIND = FurnitureKind(BOOKSHELF, (0.8, 0.3, 1.6), (1.2, 0.4, 2.0), True, solid_block)
DESK_KIND = FurnitureKind(DESK, (1.0, 0.6, 0.72), (1.6, 0.8, 0.76), True, desk_parts)
TABLE_KIND = FurnitureKind(TABLE, (0.8, 0.7, 0.7), (1.6, 1.0, 0.78), False, table_parts)
CHAIR_KIND = FurnitureKind(CHAIR, (0.42, 0.42, 0.8), (0.55, 0.55, 1.0), False, chair_parts)

FURNITURE_KINDS = (BED_KIND, SOFA_KIND, CABINET_KIND, BOOKSHELF_KIND, DESK_KIND, TABLE_KIND, CHAIR_KIND)
