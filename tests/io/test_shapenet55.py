"""The ShapeNet-55 reader on a small tree in Point-BERT's layout (ShapeNet55-34/), intact and damaged."""

from pathlib import Path

import numpy as np
import pytest

from pix2point.io import shapenet55
from pix2point.io.modelnet import ObjectReadError

POINTS = 16
TRAIN = ["02691156-1a04e3eab45ca15dd86060f189eb133.npy", "03001627-1006be65e7bc937e9141f9b58470d646.npy",
         "03001627-1007e20d5e811b308351982a6e40cf41.npy"]
TEST = ["02691156-1a6ad7a24bb89733f412783097373bdc.npy"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ShapeNet55-34"
    (root / "ShapeNet-55").mkdir(parents=True)
    (root / "shapenet_pc").mkdir()
    (root / "ShapeNet-55" / "train.txt").write_text("\n".join(TRAIN) + "\n")
    (root / "ShapeNet-55" / "test.txt").write_text("\n".join(TEST) + "\n")
    for seed, name in enumerate(TRAIN + TEST):
        np.save(root / "shapenet_pc" / name, np.random.default_rng(seed).normal(size=(POINTS, 3)).astype(np.float32))
    return root


def test_index_lists_train_then_test_with_synsets_as_sorted_classes(root):
    synsets, entries = shapenet55.read_index(root)
    assert synsets == ["02691156", "03001627"]
    assert [(e.shape, e.label, e.split) for e in entries] == [
        ("02691156-1a04e3eab45ca15dd86060f189eb133", 0, "train"),
        ("03001627-1006be65e7bc937e9141f9b58470d646", 1, "train"),
        ("03001627-1007e20d5e811b308351982a6e40cf41", 1, "train"),
        ("02691156-1a6ad7a24bb89733f412783097373bdc", 0, "test"),
    ]
    assert entries[0].path == root / "shapenet_pc" / TRAIN[0]


def test_cloud_is_a_prefix_or_a_seeded_draw_of_the_file(root):
    path = root / "shapenet_pc" / TRAIN[1]
    raw = np.load(path)
    np.testing.assert_array_equal(shapenet55.read_cloud(path, 5), raw[:5])
    drawn = shapenet55.read_cloud(path, 5, np.random.default_rng(0))
    assert drawn.shape == (5, 3) and drawn.dtype == np.float32
    assert all(any(np.array_equal(row, r) for r in raw) for row in drawn) and not np.array_equal(drawn, raw[:5])
    np.testing.assert_array_equal(drawn, shapenet55.read_cloud(path, 5, np.random.default_rng(0)))


def test_missing_cloud_file_is_an_error_naming_it_and_its_list(root):
    (root / "shapenet_pc" / TEST[0]).unlink()
    with pytest.raises(ObjectReadError, match=f"test.txt names {TEST[0]!r} but its file .*{TEST[0]} does not exist"):
        shapenet55.read_index(root)


def test_missing_list_is_an_error_naming_it(root):
    (root / "ShapeNet-55" / "train.txt").unlink()
    with pytest.raises(ObjectReadError, match=f"missing file: {root / 'ShapeNet-55' / 'train.txt'}"):
        shapenet55.read_index(root)


@pytest.mark.parametrize("content, message", [
    (b"\x93NUMPY truncated", "not a NumPy .npy array"),
    (None, r"expected float points of shape \[N, 3\], found float32 \(16, 4\)"),
])
def test_malformed_cloud_file_is_an_error_naming_it(root, content, message):
    path = root / "shapenet_pc" / TRAIN[0]
    if content is None:
        np.save(path, np.zeros((POINTS, 4), np.float32))
    else:
        path.write_bytes(content)
    with pytest.raises(ObjectReadError, match=f"{path}: {message}"):
        shapenet55.read_cloud(path, 8)


def test_too_few_points_and_nan_are_errors(root):
    path = root / "shapenet_pc" / TRAIN[0]
    with pytest.raises(ObjectReadError, match=f"{path}: has {POINTS} points, 100 are needed"):
        shapenet55.read_cloud(path, 100)
    cloud = np.load(path)
    cloud[2, 1] = np.nan
    np.save(path, cloud)
    with pytest.raises(ObjectReadError, match=f"{path}: contains NaN"):
        shapenet55.read_cloud(path, 8)


def test_malformed_list_line_and_a_shape_in_both_splits_are_errors(root):
    listed = root / "ShapeNet-55" / "test.txt"
    listed.write_text(TEST[0] + "\nairplane_0001\n")
    with pytest.raises(ObjectReadError, match=f"{listed}: lines \\['airplane_0001'\\] are not"):
        shapenet55.read_index(root)
    listed.write_text(TRAIN[0] + "\n")
    with pytest.raises(ObjectReadError, match="both list"):
        shapenet55.read_index(root)
