from __future__ import annotations

import numpy as np
import pytest

from pix2point.geometry.orthographic import VIEW_AXES, project_views, splat_depths, view_pixels


def _cube_corners_and(point: list[float]) -> np.ndarray:
    """The 8 corners of [-1, 1]^3 plus `point`: every view's grid is 2 / (S - 3) and the box is centred."""
    corners = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1], indexing="ij")).reshape(3, -1).T
    return np.concatenate([corners, [point]]).astype(np.float32)[None]


def test_known_point_lands_at_known_pixel_in_each_view() -> None:
    size = 224
    # Cells run 0..221 across [-1, 1] (grid 2 / 221); the box centre cell (0 + 221) // 2 = 110 goes to
    # pixel 111, so cell c is at pixel c + 1. x = 0.5 -> cell floor(1.5 * 110.5) = 165, y = -0.5 -> 55,
    # z = 0.25 -> floor(1.25 * 110.5) = 138.
    x_cell, y_cell, z_cell = 166, 56, 139  # pixels
    views = project_views(_cube_corners_and([0.5, -0.5, 0.25]), size, splat=5)
    point_pixels = views.pixels[0, :, -1]  # [V, 2] (u, v) = (column, row)
    # xyz: row from x, column from y; zxy: row from z, column from x; yzx: row from y, column from z.
    assert point_pixels.tolist() == [[y_cell, x_cell], [x_cell, z_cell], [z_cell, y_cell]]
    assert views.pixels.dtype == np.int16


def test_pixels_fill_the_image_minus_the_margin_and_are_centred() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(4, 500, 3)).astype(np.float32) * [1.0, 0.3, 2.0]
    pixels = project_views(points, 112, splat=5).pixels
    assert pixels.min() >= 1 and pixels.max() <= 110
    # The longer in-plane side spans S - 3 cells, the shorter one is centred around the middle.
    spans = pixels.max(axis=2) - pixels.min(axis=2)  # [M, V, 2]
    assert (spans.max(axis=-1) == 109).all()
    middles = (pixels.max(axis=2).astype(int) + pixels.min(axis=2)) / 2
    assert np.abs(middles - 55.5).max() <= 1


def test_splat_covers_splat_by_splat_pixels_and_sums_overlaps() -> None:
    size, splat = 16, 3
    row_column = np.array([[[5, 7], [6, 7]]])  # two points one row apart
    sums = splat_depths(row_column, np.array([[2.0, 0.5]]), size, splat)[0]
    assert (sums[4:7, 6:9] != 0).sum() == 9 and (sums[5:8, 6:9] != 0).sum() == 9
    assert (sums != 0).sum() == 12  # 3x3 + 3x3 overlapping in 2 rows of 3
    np.testing.assert_allclose(sums[4, 6:9], 2.0)
    np.testing.assert_allclose(sums[5:7, 6:9], 2.5)  # both footprints
    np.testing.assert_allclose(sums[7, 6:9], 0.5)


def test_five_by_five_splat_footprint_and_edge_clipping() -> None:
    sums = splat_depths(np.array([[[8, 8], [0, 15]]]), np.array([[1.0, 1.0]]), 16, 5)[0]
    assert (sums[6:11, 6:11] == 1).all() and (sums[6:11, 6:11] != 0).sum() == 25
    # At the corner the 5x5 footprint is clipped onto the edge rows/columns: its weight stays in the image.
    assert sums[0:3, 13:16].sum() == 25 and (sums[0:3, 13:16] != 0).all()


def test_depth_is_the_third_permuted_axis_and_images_are_sigmoid() -> None:
    point = [0.5, -0.5, 0.25]
    views = project_views(_cube_corners_and(point), 64, splat=1)
    images = views.images()
    assert images.shape == (1, 3, 64, 64)
    assert images[0, 0, 0, 0] == pytest.approx(0.5)  # background: sigmoid(0)
    for view, axes in enumerate(VIEW_AXES):
        u, v = views.pixels[0, view, -1]
        depth = point[axes[2]]  # z, y, x: no corner shares the point's pixel
        assert views.depth_sums[0, view, v, u] == pytest.approx(depth)
        assert images[0, view, v, u] == pytest.approx(1 / (1 + np.exp(-depth)))


def test_collapsed_cloud_gets_the_centre_pixel() -> None:
    pixels = view_pixels(np.zeros((1, 10, 2)), 32)
    assert (pixels == 15).all()


@pytest.mark.parametrize("size, splat", [(224, 4), (6, 5), (64, 0)])
def test_bad_sizes_are_errors(size: int, splat: int) -> None:
    with pytest.raises(ValueError, match="splat|image_size"):
        project_views(np.zeros((1, 4, 3), np.float32), size, splat)
