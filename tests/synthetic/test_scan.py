"""The scan: area-uniform points on the exposed surfaces only, coloured and labelled by their surface."""

from __future__ import annotations

import numpy as np

from pix2point.synthetic.boxes import Boxes, inside_any
from pix2point.synthetic.layout import SceneLayout, generate_layout, room_box
from pix2point.synthetic.scan import sample_scan
from pix2point.synthetic.shading import Materials
from pix2point.synthetic.surface_classes import FLOOR, WALL, class_index


def test_points_of_an_empty_room_spread_over_floor_and_walls_by_area() -> None:
    size = np.array([5.0, 4.0, 2.5])
    materials = Materials.random(np.array([class_index(WALL), class_index(FLOOR)]), np.random.default_rng(0))
    layout = SceneLayout(size, room_box(size), materials, ())
    scan = sample_scan(layout, 20_000, np.random.default_rng(1))
    floor_area, wall_area = size[0] * size[1], 2 * (size[0] + size[1]) * size[2]
    on_floor = scan.label == FLOOR.nyu40_id
    assert abs(on_floor.mean() - floor_area / (floor_area + wall_area)) < 0.015
    np.testing.assert_allclose(scan.xyz[on_floor, 2], 0.0, atol=1e-6)
    assert scan.xyz[:, 2].max() <= size[2] + 1e-6 and (scan.label[~on_floor] == WALL.nyu40_id).all()


def test_no_point_is_hidden_inside_furniture_under_it_or_behind_it() -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        layout = generate_layout(rng)
        scan = sample_scan(layout, 20_000, rng)
        xyz = scan.xyz.astype(np.float64)
        assert len(xyz) == 20_000
        # Strictly inside some piece (1 mm in from its faces): a point nobody could see.
        assert not inside_any(xyz, layout.furniture, -1e-3, np.full(len(xyz), -1)).any()
        assert np.all(xyz >= -1e-5) and np.all(xyz <= layout.room_size + 1e-5)
        # Furniture points on the floor plane would be bottoms (resting on the floor, hidden).
        furniture = ~np.isin(scan.label, [WALL.nyu40_id, FLOOR.nyu40_id])
        assert xyz[furniture, 2].min() > 1e-4
        # Each placed class is in the scan.
        placed = {p.kind.surface_class.nyu40_id for p in layout.placements}
        assert placed <= set(scan.label.tolist())


def test_floor_under_furniture_and_faces_against_walls_get_no_points() -> None:
    size = np.array([4.0, 4.0, 2.5])
    # A cabinet flush against the wall y = 0, standing on the floor.
    cabinet = Boxes(np.array([[2.0, 0.3, 1.0]]), np.array([[0.5, 0.3, 1.0]]), np.zeros(1), np.full((1, 3), 2), np.zeros(1, bool))
    materials = Materials.random(np.array([class_index(WALL), class_index(FLOOR), 2]), np.random.default_rng(0))
    layout = SceneLayout(size, Boxes.concatenate([room_box(size), cabinet]), materials, ())
    xyz = sample_scan(layout, 30_000, np.random.default_rng(2)).xyz
    behind_or_under = (np.abs(xyz[:, 0] - 2.0) < 0.49) & (xyz[:, 1] < 0.59)
    # There only the cabinet's top and the wall above it are exposed: no floor below it, no wall
    # behind it, none of its back or bottom.
    assert xyz[behind_or_under, 2].min() > 2.0 - 1e-5
    assert (np.abs(xyz[behind_or_under, 2] - 2.0) < 1e-5).sum() > 50
