"""The ScanNet reader on a real-layout tree (written by the synthetic generator), intact and damaged."""

from pathlib import Path

import numpy as np
import pytest

from pix2point.io import scannet
from pix2point.synthetic.scene import SyntheticSceneConfig, write_synthetic_scene

SCENE = "scene0000_00"
CONFIG = SyntheticSceneConfig(frames=4, color_size=(96, 72), depth_size=(64, 48), points=3000)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_synthetic_scene(tmp_path, SCENE, seed=3, config=CONFIG)
    return tmp_path


def test_intact_scene_reads_every_frame_with_its_own_color_and_depth_geometry(root):
    result = scannet.read_scene_frames(root, SCENE, depth_scale=1000.0)
    assert [f.frame for f in result.frames] == [0, 1, 2, 3] and not result.skipped
    frame = result.frames[0]
    assert frame.color_size == (96, 72) and frame.depth_size == (64, 48)
    assert not np.allclose(frame.color_intrinsics, frame.depth_intrinsics)
    assert frame.pose.shape == (4, 4) and np.allclose(frame.pose[3], [0, 0, 0, 1])
    assert frame.color_path == Path(SCENE, "color", "0.jpg")


def test_frame_step_keeps_every_kth_frame(root):
    assert [f.frame for f in scannet.read_scene_frames(root, SCENE, 1000.0, frame_step=2).frames] == [0, 2]


def test_scan_labels_map_to_scannet20_and_cover_several_classes(root):
    points = scannet.read_scan(root / SCENE)
    assert points.xyz.shape == (3000, 3) and points.rgb.dtype == np.uint8
    assert points.label.min() >= -1 and points.label.max() < 20
    assert len(np.unique(points.label[points.label >= 0])) >= 4


def test_nyu40_ids_outside_the_benchmark_are_ignored():
    assert scannet.nyu40_to_scannet20(np.array([1, 2, 39, 13, 0, 40, 300])).tolist() == [0, 1, 19, -1, -1, -1, -1]


@pytest.mark.parametrize("damage, reason", [
    (lambda scene: (scene / "pose" / "1.txt").write_text("nan nan nan nan\n" * 4), "nonfinite_pose"),
    (lambda scene: (scene / "pose" / "1.txt").write_text("1 0 0\n0 1 0\n"), "malformed_pose"),
    (lambda scene: (scene / "pose" / "1.txt").unlink(), "missing_pose"),
    (lambda scene: (scene / "color" / "1.jpg").unlink(), "missing_color"),
    (lambda scene: (scene / "color" / "1.jpg").write_bytes(b"not a jpeg"), "unreadable_color"),
    (lambda scene: (scene / "depth" / "1.png").write_bytes(b"\x89PNG truncated"), "unreadable_depth"),
    (lambda scene: _write_zero_depth(scene / "depth" / "1.png"), "zero_depth"),
])
def test_bad_frames_are_skipped_and_counted(root, damage, reason, caplog):
    damage(root / SCENE)
    result = scannet.read_scene_frames(root, SCENE, depth_scale=1000.0)
    assert [f.frame for f in result.frames] == [0, 2, 3]
    assert dict(result.skipped) == {reason: 1}
    assert f"{SCENE}/1" in caplog.text


def _write_zero_depth(path: Path) -> None:
    import cv2

    cv2.imwrite(str(path), np.zeros((48, 64), np.uint16))


def test_scene_without_usable_frames_is_an_error_naming_it(root):
    for pose in (root / SCENE / "pose").glob("*.txt"):
        pose.write_text("-inf -inf -inf -inf\n" * 4)
    with pytest.raises(scannet.SceneReadError, match=f"{SCENE}: no usable frame.*nonfinite_pose"):
        scannet.read_scene_frames(root, SCENE, 1000.0)


def test_missing_and_truncated_scans_are_errors_naming_the_file(root):
    scan = root / SCENE / f"{SCENE}_vh_clean_2.ply"
    scan.write_bytes(scan.read_bytes()[:200])
    with pytest.raises(scannet.SceneReadError, match=f"{scan}: unreadable PLY"):
        scannet.read_scan(root / SCENE)
    scan.unlink()
    with pytest.raises(scannet.SceneReadError, match=f"missing scan file: {scan}"):
        scannet.read_scan(root / SCENE)


def test_labels_file_with_other_vertex_count_is_an_error(root):
    from plyfile import PlyData, PlyElement

    labels_path = root / SCENE / f"{SCENE}_vh_clean_2.labels.ply"
    vertices = PlyData.read(str(labels_path), mmap=False)["vertex"].data[:10]
    PlyData([PlyElement.describe(vertices, "vertex")]).write(str(labels_path))
    with pytest.raises(scannet.SceneReadError, match="10 labelled vertices but the scan has 3000"):
        scannet.read_scan(root / SCENE)


def test_missing_labels_file_leaves_points_unlabelled(root, caplog):
    (root / SCENE / f"{SCENE}_vh_clean_2.labels.ply").unlink()
    points, unlabelled = scannet.read_scan_counting(root / SCENE)
    assert (points.label == -1).all() and unlabelled == {"scans_without_labels": 1}
    assert f"no labels file {root / SCENE}" in caplog.text


def rewrite_vertices(path: Path, change) -> None:
    """Rewrite the PLY's vertex element as `change(vertices)` returns it (a structured array)."""
    from plyfile import PlyData, PlyElement

    vertices = PlyData.read(str(path), mmap=False)["vertex"].data
    PlyData([PlyElement.describe(change(vertices), "vertex")]).write(str(path))


def test_labels_ply_ids_outside_nyu40_are_counted_and_logged(root, caplog):
    labels_path = root / SCENE / f"{SCENE}_vh_clean_2.labels.ply"
    rewrite_vertices(labels_path, lambda vertices: _with_label(vertices, 50, 25))
    points, unlabelled = scannet.read_scan_counting(root / SCENE)
    assert unlabelled == {"unknown_nyu40_id_points": 25}  # ScanNet/ScanNet#86: three scenes carry id 50
    assert (points.label[:25] == -1).all()
    assert f"{labels_path}: 25 vertices carry ids outside NYU40's 0..40 ([50])" in caplog.text


def _with_label(vertices: np.ndarray, label: int, count: int) -> np.ndarray:
    changed = vertices.copy()
    changed["label"][:count] = label
    return changed


def test_a_scan_without_vertices_is_an_error_naming_it(root):
    scan = root / SCENE / f"{SCENE}_vh_clean_2.ply"
    rewrite_vertices(scan, lambda v: v[:0])
    with pytest.raises(scannet.SceneReadError, match=rf"{scan}: the point cloud is empty \(0 points\)"):
        scannet.read_scan(root / SCENE)


def test_a_scan_far_from_the_origin_is_an_error_naming_it(root):
    """Its frame is the camera poses' too, so the reader cannot move it; float32 would merge its points."""
    scan = root / SCENE / f"{SCENE}_vh_clean_2.ply"

    def far(vertices):
        moved = vertices.astype([(name, "<f8" if name in ("x", "y", "z") else vertices.dtype[name])
                                 for name in vertices.dtype.names])
        moved["x"] += 1e6  # metres, in float64: the file itself keeps the millimetres
        return moved

    rewrite_vertices(scan, far)
    with pytest.raises(scannet.SceneReadError, match=rf"{scan}: coordinates reach 1e\+06 m from the origin, where "
                                                     r"the scenes artefact's float32 resolves only 0.0625 m"):
        scannet.read_scan(root / SCENE)


def test_bad_intrinsics_are_errors_naming_the_file(root):
    path = root / SCENE / "intrinsic" / "intrinsic_depth.txt"
    path.write_text("0 0 0 0\n" * 4)
    with pytest.raises(scannet.SceneReadError, match=f"{path}: intrinsics need finite, positive focal lengths"):
        scannet.read_scene_frames(root, SCENE, 1000.0)
    path.unlink()
    with pytest.raises(scannet.SceneReadError, match=f"missing file: {path}"):
        scannet.read_scene_frames(root, SCENE, 1000.0)


def test_empty_root_is_an_error(tmp_path):
    with pytest.raises(scannet.SceneReadError, match="no scenes"):
        scannet.list_scenes(tmp_path)


def test_axis_alignment_is_read_from_the_scene_metadata(root):
    alignment = scannet.read_axis_alignment(root / SCENE)
    assert alignment.shape == (4, 4) and not np.allclose(alignment, np.eye(4))  # the synthetic scan is turned
    np.testing.assert_allclose(alignment[:3, :3] @ alignment[:3, :3].T, np.eye(3), atol=1e-6)
    (root / SCENE / f"{SCENE}.txt").write_text("sceneType = Office\n")  # ScanNet's test scans: no alignment
    np.testing.assert_array_equal(scannet.read_axis_alignment(root / SCENE), np.eye(4))


@pytest.mark.parametrize("text, message", [
    (None, "missing scene metadata"),
    ("axisAlignment = 1 0 0\n", "16 finite numbers"),
    ("axisAlignment = " + " ".join(["nan"] * 16) + "\n", "16 finite numbers"),
    ("axisAlignment = a b c\n", "not numeric"),
])
def test_bad_scene_metadata_is_an_error_naming_the_file(root, text, message):
    path = root / SCENE / f"{SCENE}.txt"
    if text is None:
        path.unlink()
    else:
        path.write_text(text)
    with pytest.raises(scannet.SceneReadError, match=message) as error:
        scannet.read_axis_alignment(root / SCENE)
    assert str(path) in str(error.value)


def test_alignment_moves_scan_and_poses_together_and_lines_the_room_up_with_the_axes(root):
    frames = scannet.read_scene_frames(root, SCENE, depth_scale=1000.0).frames
    points = scannet.read_scan(root / SCENE)
    moved_points, moved_frames = scannet.aligned(points, frames, scannet.read_axis_alignment(root / SCENE))
    # Every point keeps its pixel: camera coordinates are the same before and after.
    for before, after in zip(frames, moved_frames):
        camera = lambda xyz, pose: (np.linalg.inv(pose) @ np.c_[xyz, np.ones(len(xyz))].T)[:3].T  # noqa: E731
        np.testing.assert_allclose(camera(moved_points.xyz, after.pose), camera(points.xyz, before.pose), atol=1e-4)
    # The synthetic room's walls lie along the axes from 0: aligned, its corner is the origin; as scanned, not.
    np.testing.assert_allclose(moved_points.xyz[:, :2].min(axis=0), 0.0, atol=0.05)
    assert np.abs(points.xyz[:, :2].min(axis=0)).max() > 0.1
    np.testing.assert_array_equal(moved_points.label, points.label)
