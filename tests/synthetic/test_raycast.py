"""cast_rays: analytic hits, the room's open top, and agreement with a plain all-boxes slab test."""

from __future__ import annotations

import numpy as np

from pix2point.synthetic.boxes import Boxes
from pix2point.synthetic.cameras import camera_path
from pix2point.synthetic.layout import generate_layout
from pix2point.synthetic.raycast import NO_HIT, cast_rays


def make_boxes(centres, half_sizes, yaws, interior) -> Boxes:
    count = len(yaws)
    return Boxes(np.array(centres, float), np.array(half_sizes, float), np.array(yaws, float), np.zeros((count, 3), int), np.array(interior))


ROOM = ([2.0, 2.0, 1.5], [2.0, 2.0, 1.5], 0.0, True)  # [0, 4] x [0, 4] x [0, 3]


def test_hits_the_nearest_face_of_rotated_boxes_and_the_walls() -> None:
    boxes = make_boxes(
        [ROOM[0], [3.0, 1.0, 0.5], [3.5, 1.0, 0.5]],
        [ROOM[1], [0.25, 0.25, 0.5], [0.1, 0.1, 0.5]],
        [0.0, np.pi / 4, np.pi / 4],
        [True, False, False],
    )
    origin = np.array([1.0, 1.0, 0.5])
    directions = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    distance, box = cast_rays(origin, directions, boxes)
    # Box 1 is a diamond seen corner-first: its corner is half a diagonal before its centre.
    np.testing.assert_allclose(distance, [2.0 - 0.25 * np.sqrt(2), 1.0, 0.5, 3.0], rtol=1e-6)
    np.testing.assert_array_equal(box, [1, 0, 0, 0])


def test_rays_leaving_through_the_open_top_hit_nothing() -> None:
    boxes = make_boxes([ROOM[0]], [ROOM[1]], [0.0], [True])
    directions = np.array([[0.0, 0.0, 1.0], [0.1, 0.2, 1.0], [1.0, 0.0, 0.1]])
    distance, box = cast_rays(np.array([2.0, 2.0, 1.5]), directions, boxes)
    assert np.isinf(distance[:2]).all() and (box[:2] == NO_HIT).all()
    np.testing.assert_allclose(distance[2], 2.0, rtol=1e-6)


def reference_cast(origin: np.ndarray, directions: np.ndarray, boxes: Boxes) -> np.ndarray:
    """Slab test of every ray against every box at once, no culling: [R] distance to the nearest surface."""
    cos, sin = np.cos(boxes.yaws), np.sin(boxes.yaws)
    offset = origin - boxes.centres  # [B, 3]
    def to_local(v):  # [..., B, 3] world -> box frames
        return np.stack([cos * v[..., 0] + sin * v[..., 1], -sin * v[..., 0] + cos * v[..., 1], v[..., 2]], axis=-1)
    o, d = to_local(offset), to_local(np.broadcast_to(directions[:, None], (len(directions), len(boxes), 3)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-boxes.half_sizes - o) / d, (boxes.half_sizes - o) / d
    entry, leave = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
    exit_z = o[..., 2] + leave * d[..., 2]
    interior_hit = np.where(exit_z >= boxes.half_sizes[:, 2] - 1e-6, np.inf, leave)
    solid_hit = np.where((entry <= leave) & (entry > 0), entry, np.inf)
    return np.where(boxes.interior, interior_hit, solid_hit).min(axis=1)


def test_culled_casting_agrees_with_testing_every_box() -> None:
    # Many layouts, so that some camera stands inside the joint bounds of pieces that share a yaw.
    for seed in range(40):
        rng = np.random.default_rng(seed)
        layout = generate_layout(rng)
        directions = rng.normal(size=(500, 3))
        for pose in camera_path(layout.room_size, 5, rng):
            distance, _ = cast_rays(pose[:3, 3], directions, layout.boxes)
            np.testing.assert_allclose(distance, reference_cast(pose[:3, 3], directions, layout.boxes), rtol=1e-4, err_msg=f"seed {seed}")
