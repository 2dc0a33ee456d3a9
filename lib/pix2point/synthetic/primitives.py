"""Surfaces of simple solids, sampled area-uniformly with their outward unit normals.

Every surface lives in its own frame with its axis along +z; `Placed` moves it into an object's frame and
`sample_surfaces` spreads a point budget over several placed surfaces in proportion to their areas, so an
object made of parts is sampled uniformly over its whole surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

Sample = tuple[np.ndarray, np.ndarray]  # points [n, 3], unit normals [n, 3]


class Surface(Protocol):
    @property
    def area(self) -> float: ...

    def sample(self, count: int, rng: np.random.Generator) -> Sample: ...


def _circle(radius: np.ndarray, angle: np.ndarray, z: np.ndarray | float) -> np.ndarray:
    return np.stack([radius * np.cos(angle), radius * np.sin(angle), np.broadcast_to(z, np.shape(angle))], axis=1)


@dataclass(frozen=True)
class Ellipsoid:
    """Centred at the origin with semi-axes `axes`."""

    axes: tuple[float, float, float]

    @property
    def area(self) -> float:
        # Knud Thomsen's approximation (within 1.1 %): only used to share points between parts.
        a, b, c = self.axes
        p = 1.6075
        return float(4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p))

    def sample(self, count: int, rng: np.random.Generator) -> Sample:
        # Directions uniform on the unit sphere, stretched, then thinned by the local area stretch so the
        # kept points are area-uniform on the ellipsoid (rejection; at worst half are rejected here).
        axes = np.asarray(self.axes)
        kept: list[np.ndarray] = []
        while sum(len(k) for k in kept) < count:
            directions = rng.normal(size=(2 * count, 3))
            directions /= np.linalg.norm(directions, axis=1, keepdims=True)
            stretch = np.linalg.norm(directions / axes, axis=1)
            kept.append(directions[rng.random(len(directions)) * (1 / axes.min()) < stretch])
        directions = np.concatenate(kept)[:count]
        normals = directions / axes
        return directions * axes, normals / np.linalg.norm(normals, axis=1, keepdims=True)


BOX_FACES = ("+x", "-x", "+y", "-y", "+z", "-z")


@dataclass(frozen=True)
class Box:
    """Axis-aligned, centred at the origin; `faces` leaves out faces hidden inside another part."""

    size: tuple[float, float, float]
    faces: tuple[str, ...] = BOX_FACES

    def _face_areas(self) -> np.ndarray:
        sx, sy, sz = self.size
        by_axis = {"x": sy * sz, "y": sx * sz, "z": sx * sy}
        return np.array([by_axis[face[1]] for face in self.faces])

    @property
    def area(self) -> float:
        return float(self._face_areas().sum())

    def sample(self, count: int, rng: np.random.Generator) -> Sample:
        areas = self._face_areas()
        face = rng.choice(len(self.faces), size=count, p=areas / areas.sum())
        axis = np.array(["xyz".index(f[1]) for f in self.faces])[face]
        sign = np.array([1.0 if f[0] == "+" else -1.0 for f in self.faces])[face]
        size = np.asarray(self.size)
        points = (rng.random((count, 3)) - 0.5) * size
        rows = np.arange(count)
        points[rows, axis] = sign * size[axis] / 2
        normals = np.zeros((count, 3))
        normals[rows, axis] = sign
        return points, normals


@dataclass(frozen=True)
class Frustum:
    """Side wall of a truncated cone from radius `bottom` at z=0 to `top` at z=`height` (a cylinder when
    equal, a cone when one is 0), without caps. `inward` flips the normals: the inside wall of a hollow."""

    bottom: float
    top: float
    height: float
    inward: bool = False

    @property
    def _slant(self) -> float:
        return float(np.hypot(self.height, self.bottom - self.top))

    @property
    def area(self) -> float:
        return float(np.pi * (self.bottom + self.top) * self._slant)

    def sample(self, count: int, rng: np.random.Generator) -> Sample:
        # The area below radius r grows as r^2 - bottom^2, so inverting it makes the heights area-uniform.
        u, angle = rng.random(count), rng.random(count) * 2 * np.pi
        if np.isclose(self.bottom, self.top):
            t, radius = u, np.full(count, self.bottom)
        else:
            radius = np.sqrt(self.bottom**2 + u * (self.top**2 - self.bottom**2))
            t = (radius - self.bottom) / (self.top - self.bottom)
        points = _circle(radius, angle, t * self.height)
        normals = _circle(np.full(count, self.height), angle, self.bottom - self.top) / self._slant
        return points, -normals if self.inward else normals


@dataclass(frozen=True)
class Disk:
    """Flat ring between `inner` and `outer` radius at z=0 (a full disk when inner is 0), facing +z or -z."""

    outer: float
    inner: float = 0.0
    facing_up: bool = True

    @property
    def area(self) -> float:
        return float(np.pi * (self.outer**2 - self.inner**2))

    def sample(self, count: int, rng: np.random.Generator) -> Sample:
        radius = np.sqrt(self.inner**2 + rng.random(count) * (self.outer**2 - self.inner**2))
        points = _circle(radius, rng.random(count) * 2 * np.pi, 0.0)
        normals = np.zeros((count, 3))
        normals[:, 2] = 1.0 if self.facing_up else -1.0
        return points, normals


@dataclass(frozen=True)
class Torus:
    """Tube of radius `tube` around a circle of radius `ring` in the z=0 plane; `arc` < 2 pi keeps the part
    from angle 0 to `arc` (a handle)."""

    ring: float
    tube: float
    arc: float = 2 * np.pi

    @property
    def area(self) -> float:
        return float(2 * np.pi * self.tube * self.ring * self.arc)

    def sample(self, count: int, rng: np.random.Generator) -> Sample:
        # The outer side of the tube has more area than the inner: accept tube angles in proportion.
        kept: list[np.ndarray] = []
        while sum(len(k) for k in kept) < count:
            phi = rng.random(2 * count) * 2 * np.pi
            accept = rng.random(len(phi)) * (self.ring + self.tube) < self.ring + self.tube * np.cos(phi)
            kept.append(phi[accept])
        phi = np.concatenate(kept)[:count]
        theta = rng.random(count) * self.arc
        normals = _circle(np.cos(phi), theta, np.sin(phi))
        points = _circle(self.ring + self.tube * np.cos(phi), theta, self.tube * np.sin(phi))
        return points, normals


@dataclass(frozen=True)
class Placed:
    """A surface rotated by `rotation` (3x3) and then moved by `offset`, in its object's frame."""

    surface: Surface
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def sample(self, count: int, rng: np.random.Generator) -> Sample:
        points, normals = self.surface.sample(count, rng)
        return points @ self.rotation.T + np.asarray(self.offset), normals @ self.rotation.T


def sample_surfaces(parts: list[Placed], count: int, rng: np.random.Generator) -> Sample:
    """`count` points spread over `parts` by area (multinomial), in random order, with their normals."""
    areas = np.array([part.surface.area for part in parts])
    counts = rng.multinomial(count, areas / areas.sum())
    samples = [part.sample(n, rng) for part, n in zip(parts, counts) if n > 0]
    order = rng.permutation(count)
    points = np.concatenate([s[0] for s in samples])[order]
    normals = np.concatenate([s[1] for s in samples])[order]
    return points, normals
