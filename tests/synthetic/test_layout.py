"""Random layouts: furniture inside the room, apart from each other, varied; cameras clear of it all."""

from __future__ import annotations

import numpy as np

from pix2point.synthetic.boxes import inside_any, to_world
from pix2point.synthetic.cameras import camera_path
from pix2point.synthetic.layout import generate_layout

SEEDS = range(20)


def corners(boxes) -> np.ndarray:
    """[B * 8, 3] corners of all boxes, world frame."""
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
    local = (signs[None] * boxes.half_sizes[:, None]).reshape(-1, 3)
    return to_world(local, boxes, np.repeat(np.arange(len(boxes)), 8))


def test_furniture_stands_on_the_floor_inside_the_room() -> None:
    for seed in SEEDS:
        layout = generate_layout(np.random.default_rng(seed))
        points = corners(layout.furniture)
        assert points[:, 2].min() > -1e-9, seed
        assert np.all(points >= -1e-9) and np.all(points <= layout.room_size + 1e-9), seed
        assert 4.0 <= layout.room_size[0] <= 7.0 and 2.4 <= layout.room_size[2] <= 3.1


def test_pieces_of_furniture_do_not_overlap() -> None:
    rng = np.random.default_rng(0)
    for seed in SEEDS:
        layout = generate_layout(np.random.default_rng(seed))
        pieces = [placement.footprint for placement in layout.placements]
        # Points spread over each footprint, at knee height, must not fall inside another piece's parts.
        for i, footprint in enumerate(pieces):
            local = rng.uniform(-1, 1, (400, 2)) * footprint.half_size
            xy = footprint.centre + local @ footprint.axes()
            points = np.column_stack([xy, np.full(len(xy), 0.3)])
            others = [j for j in range(len(pieces)) if j != i]
            for j in others:
                grown = pieces[j]
                inside = np.all(np.abs((points[:, :2] - grown.centre) @ grown.axes().T) < grown.half_size, axis=1)
                assert not inside.any(), (seed, i, j)


def test_scenes_hold_six_classes_or_more_on_average() -> None:
    class_counts = []
    for seed in SEEDS:
        layout = generate_layout(np.random.default_rng(seed))
        class_counts.append(len(set(layout.materials.surface_class.tolist())))
        assert len(layout.placements) >= 4, seed
    assert np.mean(class_counts) >= 6, class_counts


def test_camera_path_stays_in_the_room_above_and_clear_of_furniture() -> None:
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        layout = generate_layout(rng)
        poses = camera_path(layout.room_size, 30, rng)
        eyes = poses[:, :3, 3]
        assert np.all(eyes[:, :2] > 0.5) and np.all(eyes[:, :2] < layout.room_size[:2] - 0.5)
        assert np.all((eyes[:, 2] >= 1.3) & (eyes[:, 2] <= 1.7))
        furniture = layout.furniture
        assert not inside_any(eyes, furniture, 0.2, np.full(len(eyes), -1)).any(), seed
        # Looking down into the room, not at the open ceiling.
        assert np.all(poses[:, 2, 2] < 0.3)
