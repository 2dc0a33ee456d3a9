"""Vectorised ray casting against boxes (slab test): the nearest surface along every ray.

Rays are held per axis ([3, R] float32, each row contiguous): numpy reduces three contiguous rows
much faster than a trailing axis of length 3, and float32 halves the memory traffic.
"""

from __future__ import annotations

import numpy as np

from pix2point.synthetic.boxes import Boxes, rotate_about_z, to_local

NO_HIT = -1


def _slab_bounds(origin_local: np.ndarray, inverse_directions: np.ndarray, half_size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per ray, the distances where it enters and leaves the intersection of the box's three slabs ([R] each)."""
    t_low = (-half_size - origin_local)[:, None] * inverse_directions
    t_high = (half_size - origin_local)[:, None] * inverse_directions
    near, far = np.minimum(t_low, t_high), np.maximum(t_low, t_high)
    return np.maximum(np.maximum(near[0], near[1]), near[2]), np.minimum(np.minimum(far[0], far[1]), far[2])


def _surface_distances(origin_local: np.ndarray, inverse_directions: np.ndarray, half_size: np.ndarray, interior: bool) -> np.ndarray:
    """[R] distance to the surface of one box seen along each ray; inf where the ray misses it."""
    entry, leave = _slab_bounds(origin_local, inverse_directions, half_size)
    if interior:
        # From inside, the visible surface is where the ray leaves the box, unless it leaves through
        # the open top (exit point on the top plane).
        exit_height = origin_local[2] + leave / inverse_directions[2]
        return np.where(exit_height >= half_size[2] * (1 - 1e-6), np.inf, leave)
    return np.where((entry <= leave) & (entry > 0), entry, np.inf)


def _inverse_local_directions(directions: np.ndarray, yaw: float) -> np.ndarray:
    """[3, R] float32 world directions -> [3, R] reciprocals of their components in a frame turned by `yaw`."""
    cos, sin = np.float32(np.cos(yaw)), np.float32(np.sin(yaw))
    local = np.stack([cos * directions[0] + sin * directions[1], cos * directions[1] - sin * directions[0], directions[2]])
    # A zero component would give nan on a slab plane; a tiny one gives the right +-inf limit.
    local[local == 0] = 1e-30
    return 1.0 / local


def _group_bounds(boxes: Boxes, members: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre (world) and half size of the box with this yaw that encloses all `members`."""
    centres_local = rotate_about_z(boxes.centres[members], -yaw)
    low = (centres_local - boxes.half_sizes[members]).min(axis=0)
    high = (centres_local + boxes.half_sizes[members]).max(axis=0)
    return rotate_about_z(((low + high) / 2)[None], yaw)[0], (high - low) / 2


def _rays_reaching(origin: np.ndarray, inverse_local: np.ndarray, boxes: Boxes, members: np.ndarray, yaw: float, nearest: np.ndarray) -> np.ndarray:
    """Indices of the rays that enter the common bounds of `members` before their nearest surface so far."""
    centre, half_size = _group_bounds(boxes, members, yaw)
    origin_local = rotate_about_z((origin - centre)[None], -yaw)[0]
    entry, leave = _slab_bounds(origin_local.astype(np.float32), inverse_local, half_size.astype(np.float32))
    # The camera may stand inside the bounds of a scattered group (entry < 0): then every ray that
    # leaves them ahead of it reaches them.
    return np.flatnonzero((entry <= leave) & (leave > 0) & (np.maximum(entry, 0) < nearest))


def cast_rays(origin: np.ndarray, directions: np.ndarray, boxes: Boxes) -> tuple[np.ndarray, np.ndarray]:
    """Rays origin + t * directions[r] -> ([R] float32 t of the nearest surface (inf if none), [R] its box or NO_HIT)."""
    by_axis = np.ascontiguousarray(directions.T, dtype=np.float32)
    nearest = np.full(by_axis.shape[1], np.inf, np.float32)
    nearest_box = np.full(by_axis.shape[1], NO_HIT)
    origins_local = to_local(np.broadcast_to(origin, (len(boxes), 3)), boxes, np.arange(len(boxes))).astype(np.float32)
    half_sizes = boxes.half_sizes.astype(np.float32)
    # The room first: its walls then bound every ray, and furniture tests skip rays that end before it.
    all_rays = np.arange(by_axis.shape[1])
    for index in np.flatnonzero(boxes.interior):
        inverse_local = _inverse_local_directions(by_axis, boxes.yaws[index])
        distances = _surface_distances(origins_local[index], inverse_local, half_sizes[index], interior=True)
        _keep_nearer(distances, index, all_rays, nearest, nearest_box)
    # Pieces of one object share a yaw: rotate the rays once per yaw, and test the pieces only on the
    # rays that reach their common bounding box.
    solid = ~boxes.interior
    for yaw in np.unique(boxes.yaws[solid]):
        inverse_local = _inverse_local_directions(by_axis, yaw)
        members = np.flatnonzero(solid & (boxes.yaws == yaw))
        rays = _rays_reaching(origin, inverse_local, boxes, members, yaw, nearest)
        inverse_subset = inverse_local[:, rays]
        for index in members:
            distances = _surface_distances(origins_local[index], inverse_subset, half_sizes[index], interior=False)
            _keep_nearer(distances, index, rays, nearest, nearest_box)
    return nearest, nearest_box


def _keep_nearer(distances: np.ndarray, index: int, rays: np.ndarray, nearest: np.ndarray, nearest_box: np.ndarray) -> None:
    """Record box `index` for the `rays` where it is nearer than what they hit so far (in place)."""
    closer = distances < nearest[rays]
    selected = rays[closer]
    nearest[selected] = distances[closer]
    nearest_box[selected] = index
