"""The ModelNet40 reader on a small `modelnet40_normal_resampled` tree written here, intact and damaged."""

from pathlib import Path

import numpy as np
import pytest

from pix2point.io import modelnet
from pix2point.io.modelnet import ObjectReadError

ROWS = 8
CLASSES = ["airplane", "night_stand"]
TRAIN = ["airplane_0001", "night_stand_0001", "night_stand_0002"]
TEST = ["airplane_0002", "night_stand_0003"]


def _rows(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(ROWS, 6)).astype(np.float32)


def _write_tree(root: Path) -> dict[str, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    (root / modelnet.SHAPE_NAMES_FILE).write_text("\n".join(CLASSES) + "\n")
    (root / modelnet.SPLIT_FILES["train"]).write_text("\n".join(TRAIN) + "\n")
    (root / modelnet.SPLIT_FILES["test"]).write_text("\n".join(TEST) + "\n\n")  # a trailing blank line is fine
    rows = {}
    for seed, shape in enumerate(TRAIN + TEST):
        rows[shape] = _rows(seed)
        path = modelnet.shape_path(root, shape)
        path.parent.mkdir(exist_ok=True)
        np.savetxt(path, rows[shape], fmt="%.6f", delimiter=",")
    return rows


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path / "modelnet40_normal_resampled"
    return root, _write_tree(root)


def test_index_lists_train_then_test_with_labels_from_the_class_names_file(tree):
    root, _ = tree
    index = modelnet.read_index(root)
    assert index.class_names == CLASSES
    assert [e.shape for e in index.shapes] == TRAIN + TEST
    assert [e.label for e in index.shapes] == [0, 1, 1, 0, 1]
    assert [e.split for e in index.shapes] == ["train"] * 3 + ["test"] * 2
    assert index.shapes[1].path == root / "night_stand" / "night_stand_0001.txt"


def test_first_rows_are_read_as_points_and_normals(tree):
    root, rows = tree
    points, normals = modelnet.read_shape(modelnet.shape_path(root, "airplane_0002"), 5)
    assert points.dtype == np.float32 and points.shape == (5, 3) and normals.shape == (5, 3)
    np.testing.assert_allclose(points, rows["airplane_0002"][:5, :3], atol=1e-6)
    np.testing.assert_allclose(normals, rows["airplane_0002"][:5, 3:], atol=1e-6)


def test_random_sampling_draws_distinct_rows_deterministically(tree):
    root, rows = tree
    path = modelnet.shape_path(root, "night_stand_0002")
    points, _ = modelnet.read_shape(path, 6, np.random.default_rng(1))
    again, _ = modelnet.read_shape(path, 6, np.random.default_rng(1))
    np.testing.assert_array_equal(points, again)
    matches = np.all(np.isclose(points[:, None], rows["night_stand_0002"][None, :, :3], atol=1e-6), axis=2)
    assert np.all(matches.sum(axis=1) == 1) and len(set(matches.argmax(axis=1))) == 6
    assert not np.allclose(points, rows["night_stand_0002"][:6, :3], atol=1e-6)


@pytest.mark.parametrize("content, message", [
    ("1,2,3,4,5,6\nfoo,2,3,4,5,6\n" * 4, "not rows of 6 comma-separated numbers"),
    ("1,2,3,4,5,6\n1,2,3,4,5\n" * 4, "not rows of 6 comma-separated numbers"),
    ("1,2,3,4,5,6,7\n" * 8, "7 columns, expected 6"),
    ("1 2 3 4 5 6\n" * 8, "not rows of 6 comma-separated numbers"),
    ("1,2,3,4,5,6\n" * 3 + "1,2,", "not rows of 6 comma-separated numbers"),  # cut off inside a row
    ("1,2,3,4,5,6\n" * 3, "has 3 points, 8 are needed"),
    ("", "has 0 points, 8 are needed"),
    ("1,2,3,4,5,6\n" * 3 + "nan,2,3,4,5,6\n" + "1,2,3,4,5,6\n" * 4, "NaN or infinite"),
])
def test_malformed_shape_file_is_an_error_naming_it(tree, content, message):
    root, _ = tree
    path = modelnet.shape_path(root, "night_stand_0001")
    path.write_text(content)
    with pytest.raises(ObjectReadError, match=message) as error:
        modelnet.read_shape(path, ROWS)
    assert str(path) in str(error.value)


def test_split_naming_a_missing_shape_names_the_split_file_and_the_shape(tree):
    root, _ = tree
    modelnet.shape_path(root, "night_stand_0003").unlink()
    with pytest.raises(ObjectReadError) as error:
        modelnet.read_index(root)
    assert str(root / "modelnet40_test.txt") in str(error.value)
    assert str(root / "night_stand" / "night_stand_0003.txt") in str(error.value)


@pytest.mark.parametrize("shape", ["chair_0001", "chair"])
def test_split_naming_an_unknown_class_is_an_error(tree, shape):
    root, _ = tree
    (root / "modelnet40_train.txt").write_text(f"airplane_0001\n{shape}\n")
    with pytest.raises(ObjectReadError, match=f"modelnet40_train.txt: shape '{shape}' is of no class listed"):
        modelnet.read_index(root)


def test_shape_in_both_splits_is_an_error(tree):
    root, _ = tree
    (root / "modelnet40_test.txt").write_text("airplane_0001\n")
    with pytest.raises(ObjectReadError, match=r"modelnet40_train.txt and .*modelnet40_test.txt both list \['airplane_0001'\]"):
        modelnet.read_index(root)


@pytest.mark.parametrize("name", [modelnet.SHAPE_NAMES_FILE, "modelnet40_train.txt"])
def test_missing_index_file_is_an_error_naming_it(tree, name):
    root, _ = tree
    (root / name).unlink()
    with pytest.raises(ObjectReadError, match=f"missing file: .*{name}"):
        modelnet.read_index(root)


def test_class_listed_twice_is_an_error(tree):
    root, _ = tree
    (root / modelnet.SHAPE_NAMES_FILE).write_text("airplane\nnight_stand\nairplane\n")
    with pytest.raises(ObjectReadError, match=r"classes listed twice: \['airplane'\]"):
        modelnet.read_index(root)
