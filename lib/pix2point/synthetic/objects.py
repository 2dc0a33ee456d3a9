"""Procedural objects of ten classes, written as a ModelNet40 `modelnet40_normal_resampled` tree.

Each object is built from primitive surfaces with random sizes and proportions, sampled area-uniformly
with outward normals, turned by a random angle about its up axis and jittered slightly. Shapes are
written in ModelNet's frame (y up, see io.modelnet) and are deterministic in (seed, class, shape number).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2point.io.modelnet import SHAPE_NAMES_FILE, SPLIT_FILES, shape_id, shape_path
from pix2point.synthetic.primitives import (
    BOX_FACES, Box, Disk, Ellipsoid, Frustum, Placed, Sample, Torus, sample_surfaces,
)

JITTER = 0.004  # standard deviation of the point noise, for objects about one unit across
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # (x, y, z) -> (x, z, -y)
NO_BOTTOM = tuple(face for face in BOX_FACES if face != "-z")
NO_TOP = tuple(face for face in BOX_FACES if face != "+z")


def _solid_cylinder(radius: float, height: float, base: float = 0.0) -> list[Placed]:
    return [
        Placed(Frustum(radius, radius, height), (0, 0, base)),
        Placed(Disk(radius, facing_up=False), (0, 0, base)),
        Placed(Disk(radius), (0, 0, base + height)),
    ]


def _legs(half_x: float, half_y: float, side: float, length: float) -> list[Placed]:
    """Four square legs standing on z=0 at (+-half_x, +-half_y), open at the top where a slab covers them."""
    return [
        Placed(Box((side, side, length), NO_TOP), (sx * half_x, sy * half_y, length / 2))
        for sx in (-1, 1) for sy in (-1, 1)
    ]


def sphere(rng: np.random.Generator) -> list[Placed]:
    return [Placed(Ellipsoid(tuple(rng.uniform(0.4, 0.6) * rng.uniform(0.9, 1.1, 3))))]


def box(rng: np.random.Generator) -> list[Placed]:
    return [Placed(Box(tuple(rng.uniform(0.3, 1.0, 3))))]


def cylinder(rng: np.random.Generator) -> list[Placed]:
    return _solid_cylinder(rng.uniform(0.2, 0.4), rng.uniform(0.6, 1.4))


def cone(rng: np.random.Generator) -> list[Placed]:
    radius = rng.uniform(0.25, 0.5)
    return [Placed(Frustum(radius, 0.0, rng.uniform(0.6, 1.2))), Placed(Disk(radius, facing_up=False))]


def torus(rng: np.random.Generator) -> list[Placed]:
    return [Placed(Torus(rng.uniform(0.35, 0.5), rng.uniform(0.08, 0.16)))]


def table(rng: np.random.Generator) -> list[Placed]:
    width, depth, thickness = rng.uniform(0.8, 1.4), rng.uniform(0.5, 1.0), rng.uniform(0.03, 0.07)
    height, leg = rng.uniform(0.5, 0.8), rng.uniform(0.04, 0.08)
    top = Placed(Box((width, depth, thickness)), (0, 0, height - thickness / 2))
    inset = leg / 2 + rng.uniform(0.0, 0.08)
    return [top, *_legs(width / 2 - inset, depth / 2 - inset, leg, height - thickness)]


def chair(rng: np.random.Generator) -> list[Placed]:
    width, seat_height, thickness = rng.uniform(0.4, 0.55), rng.uniform(0.4, 0.5), 0.05
    depth, back_height, leg = width * rng.uniform(0.9, 1.1), rng.uniform(0.4, 0.6), rng.uniform(0.03, 0.05)
    seat = Placed(Box((width, depth, thickness)), (0, 0, seat_height - thickness / 2))
    back_centre = (0, (thickness - depth) / 2, seat_height + back_height / 2)  # on the seat's rear edge
    back = Placed(Box((width, thickness, back_height), NO_BOTTOM), back_centre)
    return [seat, back, *_legs((width - leg) / 2, (depth - leg) / 2, leg, seat_height - thickness)]


def lamp(rng: np.random.Generator) -> list[Placed]:
    base_radius, base_height = rng.uniform(0.15, 0.25), rng.uniform(0.02, 0.05)
    pole_radius, pole_height = rng.uniform(0.015, 0.025), rng.uniform(0.6, 1.0)
    shade_height = rng.uniform(0.2, 0.3)
    shade = Frustum(rng.uniform(0.2, 0.3), rng.uniform(0.08, 0.14), shade_height)
    return [
        *_solid_cylinder(base_radius, base_height),
        Placed(Frustum(pole_radius, pole_radius, pole_height), (0, 0, base_height)),
        Placed(shade, (0, 0, base_height + pole_height - shade_height)),
    ]


# Turns the handle's half ring (angles 0..pi in its xy-plane) upright, bulging out along +x.
HANDLE_ROTATION = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def cup(rng: np.random.Generator) -> list[Placed]:
    radius, height, wall = rng.uniform(0.25, 0.35), rng.uniform(0.5, 0.9), rng.uniform(0.02, 0.04)
    inner, floor = radius - wall, rng.uniform(0.03, 0.06)
    return [
        Placed(Frustum(radius, radius, height)),
        Placed(Disk(radius, facing_up=False)),
        Placed(Frustum(inner, inner, height - floor, inward=True), (0, 0, floor)),
        Placed(Disk(inner), (0, 0, floor)),
        Placed(Disk(radius, inner), (0, 0, height)),
        Placed(Torus(height * rng.uniform(0.25, 0.35), rng.uniform(0.02, 0.035), np.pi), (radius, 0, height / 2),
               HANDLE_ROTATION),
    ]


def bottle(rng: np.random.Generator) -> list[Placed]:
    radius, body = rng.uniform(0.15, 0.25), rng.uniform(0.5, 0.8)
    neck_radius, shoulder, neck = rng.uniform(0.04, 0.07), rng.uniform(0.1, 0.2), rng.uniform(0.15, 0.3)
    return [
        Placed(Frustum(radius, radius, body)),
        Placed(Disk(radius, facing_up=False)),
        Placed(Frustum(radius, neck_radius, shoulder), (0, 0, body)),
        Placed(Frustum(neck_radius, neck_radius, neck), (0, 0, body + shoulder)),
        Placed(Disk(neck_radius), (0, 0, body + shoulder + neck)),
    ]


@dataclass(frozen=True)
class ObjectClass:
    name: str
    build: Callable[[np.random.Generator], list[Placed]]  # parts in a z-up frame, standing on z=0


CLASSES = tuple(ObjectClass(fn.__name__, fn) for fn in (sphere, box, cylinder, cone, torus, table, chair, lamp, cup, bottle))


def sample_object(object_class: ObjectClass, count: int, rng: np.random.Generator) -> Sample:
    """`count` points and unit normals of a new random object of the class, centred, y up."""
    points, normals = sample_surfaces(object_class.build(rng), count, rng)
    angle = rng.uniform(0, 2 * np.pi)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    to_modelnet = Z_UP_TO_Y_UP @ turn
    points = points @ to_modelnet.T
    points -= (points.min(axis=0) + points.max(axis=0)) / 2
    points += rng.normal(0.0, JITTER, points.shape)
    return points, normals @ to_modelnet.T


def shape_rng(seed: int, label: int, number: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, label, number]))


def write_class_shapes(label: int, root: Path, numbers: list[int], count: int, seed: int) -> None:
    """<root>/<class>/<class>_<number>.txt for each number: `count` rows x,y,z,nx,ny,nz."""
    object_class = CLASSES[label]
    for number in numbers:
        points, normals = sample_object(object_class, count, shape_rng(seed, label, number))
        path = shape_path(root, shape_id(object_class.name, number))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(path, np.hstack([points, normals]), fmt="%.6f", delimiter=",")


def write_index(root: Path, class_names: list[str], split_shapes: dict[str, list[str]]) -> None:
    """The class-names file and one split file per entry of `split_shapes` (split -> shape ids)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / SHAPE_NAMES_FILE).write_text("".join(f"{name}\n" for name in class_names))
    for split, shapes in split_shapes.items():
        (root / SPLIT_FILES[split]).write_text("".join(f"{shape}\n" for shape in shapes))
