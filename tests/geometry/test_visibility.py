from pathlib import Path

import numpy as np
import pytest

from pix2point.geometry.camera import intrinsics_matrix, look_at, pixel_rays, transform
from pix2point.geometry.visibility import DepthAgreement, frame_correspondences, pixels_inside
from pix2point.io.scenes_table import Frame

DEPTH_SIZE = (64, 48)
DEPTH_K = intrinsics_matrix(fx=60.0, fy=62.0, cx=31.5, cy=23.5)
# Narrower field of view than the depth camera, and another size: the ScanNet situation.
COLOR_SIZE = (100, 70)
NARROW_COLOR_K = intrinsics_matrix(fx=150.0, fy=140.0, cx=49.2, cy=35.7)
WIDE_COLOR_K = intrinsics_matrix(fx=40.0, fy=40.0, cx=49.3, cy=34.5)
STRICT = DepthAgreement(tolerance=0.05, relative_tolerance=0.0, max_depth=10.0)
# A pose with no axis aligned to the world's, so that a wrong pose inversion would move every point.
POSE = look_at(eye=np.array([1.0, -2.0, 1.5]), target=np.array([3.0, 1.0, 0.8]))


def frame_at(pose: np.ndarray, color_k: np.ndarray = NARROW_COLOR_K) -> Frame:
    return Frame(scene="scene", frame=0, color_path=Path("unused.jpg"), depth_path=Path("unused.png"), pose=pose,
                 color_intrinsics=color_k, color_size=COLOR_SIZE, depth_intrinsics=DEPTH_K,
                 depth_size=DEPTH_SIZE, depth_scale=1000.0)


def on_depth_ray(col: float, row: float, depth: float) -> np.ndarray:
    """Camera-frame point at `depth` on the ray through depth-image coordinate (col, row), written out by hand."""
    return np.array([(col - 31.5) / 60.0 * depth, (row - 23.5) / 62.0 * depth, depth])


def flat_depth(depth: float) -> np.ndarray:
    return np.full(DEPTH_SIZE[::-1], depth, np.float32)


def pairs_of(points_camera: list[np.ndarray], depth_m: np.ndarray, color_k: np.ndarray = NARROW_COLOR_K,
             rule: DepthAgreement = STRICT) -> tuple[list[int], list[list[int]]]:
    points_world = transform(np.array(points_camera), POSE)
    indices, pixels = frame_correspondences(points_world, frame_at(POSE, color_k), depth_m, rule)
    return indices.tolist(), pixels.tolist()


def test_pixels_round_to_the_nearest_centre_with_halves_up_and_stay_inside_the_image():
    coordinates = np.array([[9.5, 0.49], [-0.5, -0.5], [3.4999, 2.5], [11.5, 0.0], [-0.51, 0.0], [0.0, 3.5], [np.nan, 1.0]])
    inside, pixels = pixels_inside(coordinates, size=(12, 4))
    assert inside.tolist() == [True, True, True, False, False, False, False]
    assert pixels.tolist() == [[10, 0], [0, 0], [3, 3]]


def test_point_on_an_opaque_plane_is_seen_and_points_behind_or_before_it_are_not():
    # Render the depth image of a tilted plane n . X = 2 (camera frame): along a ray (x, y, 1), depth = 2 / (n . ray).
    normal = np.array([0.2, -0.1, 1.0]) / np.linalg.norm([0.2, -0.1, 1.0])
    rays = pixel_rays(*DEPTH_SIZE, DEPTH_K)
    depth_m = (2.0 / (rays @ normal)).astype(np.float32)
    ray = np.array([(30.3 - 31.5) / 60.0, (12.8 - 23.5) / 62.0, 1.0])  # between pixel centres
    on_plane = ray * 2.0 / (ray @ normal)

    indices, _ = pairs_of([on_plane * 1.5, on_plane, on_plane * 0.6], depth_m)

    assert indices == [1]


def test_depth_pixel_maps_to_the_color_pixel_of_the_color_intrinsics():
    depth_pixels = [(20, 10), (45, 30), (33, 18)]
    points = [on_depth_ray(col, row, 2.0) for col, row in depth_pixels]

    indices, pixels = pairs_of(points, flat_depth(2.0))

    # Same ray, other camera: equal normalised coordinates (x/z, y/z) under the color intrinsics.
    expected = [[int(np.floor(150.0 * (col - 31.5) / 60.0 + 49.2 + 0.5)), int(np.floor(140.0 * (row - 23.5) / 62.0 + 35.7 + 0.5))]
                for col, row in depth_pixels]
    assert indices == [0, 1, 2]
    assert pixels == expected
    assert expected[0] == [20, 5] and expected[1] == [83, 50]  # the hand computation itself


def test_point_seen_in_depth_but_outside_the_color_image_gets_nothing():
    inside_both, left_of_color = on_depth_ray(30, 20, 2.0), on_depth_ray(2, 24, 2.0)
    indices, _ = pairs_of([left_of_color, inside_both], flat_depth(2.0))
    assert indices == [1]


def test_point_outside_the_depth_image_gets_nothing_even_inside_the_color_image():
    inside_both, left_of_depth = on_depth_ray(30, 20, 2.0), on_depth_ray(-3, 20, 2.0)
    indices, pixels = pairs_of([left_of_depth, inside_both], flat_depth(2.0), color_k=WIDE_COLOR_K)
    assert indices == [1]
    assert pixels == [[int(np.floor(40.0 * (30 - 31.5) / 60.0 + 49.3 + 0.5)), int(np.floor(40.0 * (20 - 23.5) / 62.0 + 34.5 + 0.5))]]


def test_point_behind_the_camera_gets_nothing_even_where_depths_would_agree():
    in_front = on_depth_ray(30, 20, 2.0)
    # -P projects to the same pixel as P; a tolerance this loose would accept its depth.
    loose = DepthAgreement(tolerance=10.0, relative_tolerance=0.0, max_depth=10.0)
    indices, _ = pairs_of([-in_front, in_front], flat_depth(2.0), rule=loose)
    assert indices == [1]


def test_pixel_without_a_depth_measurement_sees_nothing():
    depth_m = flat_depth(0.03)
    depth_m[20, 10] = 0.0
    indices, _ = pairs_of([on_depth_ray(10, 20, 0.03), on_depth_ray(30, 20, 0.03)], depth_m, color_k=WIDE_COLOR_K)
    assert indices == [1]


@pytest.mark.parametrize("max_depth, seen", [(6.0, [0]), (4.0, [])])
def test_points_beyond_max_depth_are_not_paired(max_depth, seen):
    rule = DepthAgreement(tolerance=0.05, relative_tolerance=0.0, max_depth=max_depth)
    indices, _ = pairs_of([on_depth_ray(30, 20, 5.0)], flat_depth(5.0), rule=rule)
    assert indices == seen


def test_relative_tolerance_grows_with_the_measured_depth():
    rule = DepthAgreement(tolerance=0.05, relative_tolerance=0.02, max_depth=10.0)
    # Allowed offset: 0.05 + 0.02 * depth, i.e. 0.07 at 1 m and 0.13 at 4 m.
    point_depth, measured = np.array([1.1, 4.1, 4.2, 3.9]), np.array([1.0, 4.0, 4.0, 4.0])
    assert rule.agrees(point_depth, measured).tolist() == [False, True, False, True]
    assert STRICT.agrees(point_depth, measured).tolist() == [False, False, False, False]
