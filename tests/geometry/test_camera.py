import numpy as np
import pytest

from pix2point.geometry.camera import (
    backproject,
    depth_image_to_points,
    intrinsics_matrix,
    look_at,
    pixel_rays,
    project,
    scale_intrinsics,
    transform,
    world_to_camera,
)

K = intrinsics_matrix(fx=577.9, fy=580.2, cx=319.5, cy=239.5)


def random_pose(rng: np.random.Generator) -> np.ndarray:
    """A random camera-to-world rigid transform (rotation from QR, determinant forced to +1)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.diag(r))
    if np.linalg.det(rotation) < 0:
        rotation[:, 0] *= -1
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, rng.uniform(-5, 5, size=3)
    return pose


def test_project_follows_the_pinhole_formula():
    pixels, depth = project(np.array([[1.0, -0.5, 2.0]]), intrinsics_matrix(500, 400, 320, 240))
    np.testing.assert_allclose(pixels, [[500 * 0.5 + 320, 400 * -0.25 + 240]])
    np.testing.assert_allclose(depth, [2.0])


def test_world_to_camera_inverts_the_pose():
    rng = np.random.default_rng(0)
    pose = random_pose(rng)
    points_world = rng.uniform(-3, 3, size=(100, 3))
    np.testing.assert_allclose(world_to_camera(points_world, pose), transform(points_world, np.linalg.inv(pose)), atol=1e-12)


def test_projection_then_backprojection_recovers_world_points():
    rng = np.random.default_rng(1)
    pose = random_pose(rng)
    points_camera = np.column_stack([rng.uniform(-2, 2, (500, 2)), rng.uniform(0.3, 6, 500)])
    points_world = transform(points_camera, pose)

    pixels, depth = project(world_to_camera(points_world, pose), K)
    recovered = transform(backproject(pixels, depth, K), pose)

    np.testing.assert_allclose(recovered, points_world, atol=1e-9)


def test_depth_image_points_project_back_onto_their_pixels():
    depth_m = np.full((6, 8), 2.5)
    depth_m[1, 3] = 0.0  # no measurement: must not produce a point
    points, pixels = depth_image_to_points(depth_m, K)

    assert len(points) == depth_m.size - 1
    assert [3, 1] not in pixels.tolist()
    reprojected, depth = project(points, K)
    np.testing.assert_allclose(reprojected, pixels, atol=1e-9)
    np.testing.assert_allclose(depth, 2.5)


def test_pixel_rays_scaled_by_depth_project_onto_the_pixel_grid():
    rays = pixel_rays(width=5, height=3, intrinsics=K)
    pixels, _ = project(rays.reshape(-1, 3) * 1.7, K)
    cols, rows = np.meshgrid(np.arange(5), np.arange(3))
    np.testing.assert_allclose(pixels, np.column_stack([cols.ravel(), rows.ravel()]), atol=1e-9)


@pytest.mark.parametrize("scale_x, scale_y", [(0.5, 0.5), (2.025, 2.0167)])
def test_scaled_intrinsics_keep_pixel_edges_aligned(scale_x, scale_y):
    # A resized image keeps its outer edges: coordinate c maps to (c + 0.5) * scale - 0.5.
    point = np.array([[0.31, -0.27, 1.9]])
    original, _ = project(point, K)
    scaled, _ = project(point, scale_intrinsics(K, scale_x, scale_y))
    np.testing.assert_allclose(scaled, (original + 0.5) * [scale_x, scale_y] - 0.5)


def test_look_at_centres_the_target_with_world_up_pointing_up_in_the_image():
    eye, target = np.array([1.0, -2.0, 1.5]), np.array([3.0, 1.0, 0.8])
    pose = look_at(eye, target)

    np.testing.assert_allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-12)
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    pixels, depth = project(world_to_camera(np.stack([target, target + [0, 0, 0.1]]), pose), K)
    np.testing.assert_allclose(pixels[0], K[:2, 2], atol=1e-9)
    assert depth[0] == pytest.approx(np.linalg.norm(target - eye))
    assert pixels[1, 1] < pixels[0, 1]  # higher in the world = smaller row
