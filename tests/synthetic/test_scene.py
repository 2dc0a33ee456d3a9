"""write_synthetic_scene: the written tree follows ScanNet's export layout, and its parts agree geometrically."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from plyfile import PlyData
from scipy.spatial import cKDTree

from pix2point.geometry.camera import depth_image_to_points, project, scale_intrinsics, transform, world_to_camera
from pix2point.synthetic.scene import SyntheticSceneConfig, write_synthetic_scene

SCENE = "scene0007_00"
CONFIG = SyntheticSceneConfig(frames=4, color_size=(160, 120), depth_size=(96, 72), points=100_000, depth_scale=1000.0)
TINY = SyntheticSceneConfig(frames=2, color_size=(48, 36), depth_size=(32, 24), points=2_000)


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_scene(tmp_path_factory.mktemp("synthetic"), SCENE, seed=7, config=CONFIG)


def read_vertices(path: Path) -> np.ndarray:
    return PlyData.read(str(path))["vertex"].data


def read_scan(scene_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    vertices = read_vertices(scene_dir / f"{SCENE}_vh_clean_2.ply")
    xyz = np.stack([vertices["x"], vertices["y"], vertices["z"]], axis=1).astype(np.float64)
    rgb = np.stack([vertices["red"], vertices["green"], vertices["blue"]], axis=1).astype(np.float64)
    return xyz, rgb


def read_frame(scene_dir: Path, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RGB uint8, depth metres, pose) of one frame."""
    bgr = cv2.imread(str(scene_dir / "color" / f"{frame}.jpg"), cv2.IMREAD_COLOR)
    depth = cv2.imread(str(scene_dir / "depth" / f"{frame}.png"), cv2.IMREAD_UNCHANGED)
    pose = np.loadtxt(scene_dir / "pose" / f"{frame}.txt")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), depth / CONFIG.depth_scale, pose


def intrinsics(scene_dir: Path, name: str) -> np.ndarray:
    return np.loadtxt(scene_dir / "intrinsic" / f"intrinsic_{name}.txt")


def pixels_of(points_world: np.ndarray, pose: np.ndarray, k: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest pixel (column, row) and depth of each point, and whether it falls in the image in front of the camera."""
    uv, depth = project(world_to_camera(points_world, pose), k)
    pixels = np.round(np.nan_to_num(uv, nan=-1, posinf=-1, neginf=-1)).astype(np.int64)
    inside = (depth > 0) & np.all((pixels >= 0) & (pixels < np.array(size)), axis=1)
    return np.where(inside[:, None], pixels, 0), depth, inside


def test_tree_has_the_scannet_export_layout(scene_dir: Path) -> None:
    for frame in range(CONFIG.frames):
        rgb_bgr = cv2.imread(str(scene_dir / "color" / f"{frame}.jpg"), cv2.IMREAD_COLOR)
        depth = cv2.imread(str(scene_dir / "depth" / f"{frame}.png"), cv2.IMREAD_UNCHANGED)
        pose = np.loadtxt(scene_dir / "pose" / f"{frame}.txt")
        assert rgb_bgr.shape == (120, 160, 3)
        assert depth.dtype == np.uint16 and depth.shape == (72, 96)
        assert (depth > 0).mean() > 0.9 and depth.max() < 8 * CONFIG.depth_scale
        assert pose.shape == (4, 4) and np.isfinite(pose).all()
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-6)
        np.testing.assert_allclose(pose[3], [0, 0, 0, 1])
    color_k, depth_k = intrinsics(scene_dir, "color"), intrinsics(scene_dir, "depth")
    for k, (width, height) in ((color_k, CONFIG.color_size), (depth_k, CONFIG.depth_size)):
        assert k.shape == (4, 4)
        np.testing.assert_allclose(k[3], [0, 0, 0, 1])
        np.testing.assert_allclose(k[2, :3], [0, 0, 1])
        assert 0.3 * width < k[0, 2] < 0.7 * width and 0.3 * height < k[1, 2] < 0.7 * height
    # Registered cameras: about the same horizontal field of view.
    fov = [2 * np.degrees(np.arctan(w / 2 / k[0, 0])) for k, w in ((color_k, 160), (depth_k, 96))]
    assert abs(fov[0] - fov[1]) < 5


def test_scan_plys_carry_colours_and_nyu40_labels(scene_dir: Path) -> None:
    scan = read_vertices(scene_dir / f"{SCENE}_vh_clean_2.ply")
    labelled = read_vertices(scene_dir / f"{SCENE}_vh_clean_2.labels.ply")
    assert scan.dtype.names == ("x", "y", "z", "red", "green", "blue", "alpha")
    assert labelled.dtype.names == ("x", "y", "z", "red", "green", "blue", "alpha", "label")
    assert scan["x"].dtype == np.float32 and scan["red"].dtype == np.uint8 and labelled["label"].dtype == np.uint16
    assert len(scan) == len(labelled) == CONFIG.points
    for axis in ("x", "y", "z"):
        np.testing.assert_array_equal(scan[axis], labelled[axis])
    labels = set(np.unique(labelled["label"]).tolist())
    assert {1, 2} <= labels and len(labels) >= 5 and labels <= {1, 2, 3, 4, 5, 6, 7, 10, 14}
    # labels.ply colours are ScanNet's label palette (wall: light blue), not the surface colours.
    wall = labelled["label"] == 1
    assert (labelled["red"][wall] == 174).all() and (labelled["blue"][wall] == 232).all()
    assert PlyData.read(str(scene_dir / f"{SCENE}_vh_clean_2.ply")).header.startswith("ply\nformat binary_little_endian")


def test_same_seed_writes_identical_files_and_another_seed_another_room(tmp_path: Path) -> None:
    first, again = (write_synthetic_scene(tmp_path / run, SCENE, seed=11, config=TINY) for run in ("a", "b"))
    other = write_synthetic_scene(tmp_path / "c", SCENE, seed=12, config=TINY)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 3 * TINY.frames + 2 + 2 + 2 + 1  # frames, intrinsics, scan PLYs, annotation JSONs, <scene>.txt
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    for name in (Path("pose/0.txt"), Path(f"{SCENE}_vh_clean_2.ply")):
        assert (first / name).read_bytes() != (other / name).read_bytes()


def test_refuses_to_write_over_an_existing_scene(tmp_path: Path) -> None:
    write_synthetic_scene(tmp_path, SCENE, seed=1, config=TINY)
    with pytest.raises(FileExistsError):
        write_synthetic_scene(tmp_path, SCENE, seed=1, config=TINY)


def test_depth_back_projects_onto_the_scan(scene_dir: Path) -> None:
    xyz, _ = read_scan(scene_dir)
    tree = cKDTree(xyz)
    depth_k = intrinsics(scene_dir, "depth")[:3, :3]
    # What a reader that (wrongly) rescales the colour intrinsics to the depth image would use.
    color_k_rescaled = scale_intrinsics(intrinsics(scene_dir, "color")[:3, :3], 96 / 160, 72 / 120)
    for frame in range(CONFIG.frames):
        _, depth, pose = read_frame(scene_dir, frame)
        distances = {}
        for name, k in (("depth", depth_k), ("rescaled colour", color_k_rescaled)):
            points, _ = depth_image_to_points(depth, k)
            distances[name] = np.median(tree.query(transform(points, pose))[0])
        assert distances["depth"] < 0.02, distances
        assert distances["rescaled colour"] > 2 * distances["depth"], distances


def test_scan_points_are_never_in_front_of_the_measured_depth(scene_dir: Path) -> None:
    xyz, _ = read_scan(scene_dir)
    depth_k = intrinsics(scene_dir, "depth")[:3, :3]
    for frame in range(CONFIG.frames):
        _, depth, pose = read_frame(scene_dir, frame)
        pixels, point_depth, inside = pixels_of(xyz, pose, depth_k, CONFIG.depth_size)
        agree = np.abs(depth[pixels[:, 1], pixels[:, 0]] - point_depth) < 0.02
        # A point is the surface its pixel sees or lies behind it (occluded). Its nearest pixel may
        # sample a slanted surface or a silhouette half a pixel away: compare with the nearest depth
        # around that pixel.
        measured = np.where(depth > 0, depth, np.inf).astype(np.float32)
        nearest_around = cv2.erode(measured, np.ones((3, 3), np.uint8))[pixels[:, 1], pixels[:, 0]]
        in_front = point_depth < nearest_around - 0.02
        assert agree[inside].mean() > 0.35
        assert in_front[inside].mean() < 0.01, in_front[inside].mean()


def test_scan_colours_match_the_colour_frames(scene_dir: Path) -> None:
    xyz, scan_rgb = read_scan(scene_dir)
    depth_k, color_k = intrinsics(scene_dir, "depth")[:3, :3], intrinsics(scene_dir, "color")[:3, :3]
    rng = np.random.default_rng(0)
    for frame in range(CONFIG.frames):
        image, depth, pose = read_frame(scene_dir, frame)
        pixels, point_depth, inside = pixels_of(xyz, pose, depth_k, CONFIG.depth_size)
        visible = inside & (np.abs(depth[pixels[:, 1], pixels[:, 0]] - point_depth) < 0.02)
        color_pixels, _, in_color = pixels_of(xyz[visible], pose, color_k, CONFIG.color_size)
        seen_rgb = image[color_pixels[in_color, 1], color_pixels[in_color, 0]].astype(np.float64)
        expected = scan_rgb[visible][in_color]
        difference = np.median(np.abs(seen_rgb - expected).mean(axis=1))
        unrelated = np.median(np.abs(seen_rgb - rng.permutation(expected)).mean(axis=1))
        assert in_color.sum() > 1000
        assert difference < 12 and difference < 0.5 * unrelated, (difference, unrelated)
