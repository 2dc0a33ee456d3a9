"""The reader of Pointcept's preprocessed ScanNet on a small <split>/<scene>/*.npy tree, intact and damaged."""

from pathlib import Path

import numpy as np
import pytest

from pix2point.io import pointcept_scannet
from pix2point.io.scannet import SceneReadError

SCENES = {"train": ["scene0000_00", "scene0000_01"], "val": ["scene0011_00"], "test": ["scene0707_00"]}


def write_scene(scene_dir: Path, points: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "coord": rng.uniform(0, 4, (points, 3)).astype(np.float32),
        "color": rng.integers(0, 256, (points, 3)).astype(np.uint8),
        "normal": rng.normal(size=(points, 3)).astype(np.float32),
        "segment20": rng.integers(-1, 20, points).astype(np.int16),
        "segment200": rng.integers(-1, 200, points).astype(np.int16),
        "instance": rng.integers(-1, 5, points).astype(np.int16),
    }
    scene_dir.mkdir(parents=True)
    for name, array in arrays.items():
        np.save(scene_dir / f"{name}.npy", array)
    return arrays


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "scannet"
    for split, scenes in SCENES.items():
        for i, scene in enumerate(scenes):
            write_scene(root / split / scene, points=50 + i, seed=i)
    return root


def test_train_and_val_folders_are_the_split_and_test_is_left_out(root):
    assert pointcept_scannet.list_scenes(root) == {"scene0000_00": "train", "scene0000_01": "train", "scene0011_00": "val"}


def test_scene_reads_coordinates_colours_and_scannet20_labels(root):
    arrays = np.load(root / "train" / "scene0000_01" / "segment20.npy")
    points = pointcept_scannet.read_scene(root / "train" / "scene0000_01")
    assert points.xyz.shape == (51, 3) and points.xyz.dtype == np.float32 and points.rgb.dtype == np.uint8
    np.testing.assert_array_equal(points.label, arrays)
    np.testing.assert_array_equal(points.rgb, np.load(root / "train" / "scene0000_01" / "color.npy"))


def test_float_colours_are_accepted(root):
    scene = root / "val" / "scene0011_00"
    np.save(scene / "color.npy", np.load(scene / "color.npy").astype(np.float32))
    assert pointcept_scannet.read_scene(scene).rgb.dtype == np.uint8


def test_missing_file_is_an_error_naming_it(root):
    path = root / "train" / "scene0000_00" / "segment20.npy"
    path.unlink()
    with pytest.raises(SceneReadError, match=f"missing file: {path}"):
        pointcept_scannet.read_scene(path.parent)


@pytest.mark.parametrize("file, content, message", [
    ("coord.npy", b"garbage", "not a NumPy .npy array"),
    ("coord.npy", np.zeros((50, 2), np.float32), r"expected finite \[N, 3\] coordinates"),
    ("color.npy", np.zeros((49, 3), np.uint8), r"expected \[50, 3\] colours in 0..255"),
    ("segment20.npy", np.zeros(50, np.float32), r"expected \[50\] integer labels"),
    ("segment20.npy", np.full(50, 20, np.int16), "labels above 19"),
])
def test_malformed_files_are_errors_naming_them(root, file, content, message):
    path = root / "train" / "scene0000_00" / file
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.save(path, content)
    with pytest.raises(SceneReadError, match=f"{path}: {message}"):
        pointcept_scannet.read_scene(path.parent)


def test_root_without_split_folders_is_an_error(tmp_path):
    with pytest.raises(SceneReadError, match="no scenes under"):
        pointcept_scannet.list_scenes(tmp_path)


def test_an_empty_scene_is_an_error_naming_its_coordinates(root):
    """Accepted, it crashed the first MinkowskiEngine convolution with SIGSEGV (NVIDIA/MinkowskiEngine#591)."""
    scene = root / "train" / "scene0000_00"
    for name, shape, dtype in (("coord", (0, 3), np.float32), ("color", (0, 3), np.uint8), ("segment20", (0,), np.int16)):
        np.save(scene / f"{name}.npy", np.zeros(shape, dtype))
    with pytest.raises(SceneReadError, match=rf"{scene / 'coord.npy'}: the point cloud is empty \(0 points\)"):
        pointcept_scannet.read_scene(scene)


def test_float64_coordinates_far_from_the_origin_are_moved_near_it_and_keep_their_centimetres(root):
    scene = root / "train" / "scene0000_00"
    coord = np.load(scene / "coord.npy").astype(np.float64) + [1e6, -3e6, 0.0]
    np.save(scene / "coord.npy", coord)
    xyz = pointcept_scannet.read_scene(scene).xyz
    assert np.abs(xyz).max() < 10
    np.testing.assert_allclose(xyz - xyz[0], coord - coord[0], atol=1e-4)


def test_float32_coordinates_far_from_the_origin_are_an_error_naming_the_file(root):
    """Written as float32 at 1e6 m, the file itself only resolves 6.25 cm: nothing can restore the centimetres."""
    scene = root / "train" / "scene0000_00"
    np.save(scene / "coord.npy", (np.load(scene / "coord.npy") + 1e6).astype(np.float32))
    with pytest.raises(SceneReadError, match=rf"{scene / 'coord.npy'}: coordinates reach 1e\+06 m from the origin, "
                                             r"where the file's float32 resolves only 0.0625 m"):
        pointcept_scannet.read_scene(scene)
