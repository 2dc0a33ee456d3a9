"""The ScanObjectNN reader on a small h5_files tree in the published layout, intact and damaged."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from pix2point.io import scanobjectnn
from pix2point.io.modelnet import ObjectReadError

POINTS = 32
FILES = {  # the published file of each variant and split, relative to h5_files/
    ("OBJ-BG", "train"): "main_split/training_objectdataset.h5",
    ("OBJ-BG", "test"): "main_split/test_objectdataset.h5",
    ("OBJ-ONLY", "train"): "main_split_nobg/training_objectdataset.h5",
    ("OBJ-ONLY", "test"): "main_split_nobg/test_objectdataset.h5",
    ("PB-T50-RS", "train"): "main_split/training_objectdataset_augmentedrot_scale75.h5",
    ("PB-T50-RS", "test"): "main_split/test_objectdataset_augmentedrot_scale75.h5",
}


def write_h5(path: Path, objects: int, seed: int, **overrides) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    datasets = {
        "data": rng.normal(size=(objects, POINTS, 3)).astype(np.float32),
        "label": rng.integers(0, 15, size=objects).astype(np.uint8),  # the published files store labels as bytes
        "mask": rng.integers(-1, 2, size=(objects, POINTS)).astype(np.int32),
    } | overrides
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        for key, value in datasets.items():
            h5.create_dataset(key, data=value)
    return datasets


@pytest.fixture
def root(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "h5_files"
    written = {key: write_h5(root / file, objects=3 + i, seed=i) for i, (key, file) in enumerate(FILES.items())}
    return root, written


@pytest.mark.parametrize("variant, split", list(FILES))
def test_each_variant_reads_its_own_published_file(root, variant, split):
    root, written = root
    assert scanobjectnn.split_path(root, variant, split) == root / FILES[variant, split]
    scan = scanobjectnn.read_split(root, variant, split, POINTS)
    np.testing.assert_array_equal(scan.points, written[variant, split]["data"])
    assert scan.labels.dtype == np.int16 and scan.labels.tolist() == written[variant, split]["label"].tolist()


def test_labels_stored_as_a_column_read_the_same(root):
    root, _ = root
    path = root / FILES["OBJ-BG", "test"]
    written = write_h5(path, objects=3, seed=5, label=np.array([[3], [14], [0]], np.int64))
    scan = scanobjectnn.read_split(root, "OBJ-BG", "test", POINTS)
    assert scan.labels.tolist() == [3, 14, 0] and np.array_equal(scan.points, written["data"])


def test_object_ids_are_split_and_row():
    assert scanobjectnn.shape_ids("test", 2) == ["test_00000", "test_00001"]
    assert len(scanobjectnn.CLASS_NAMES) == 15


def test_missing_file_is_an_error_naming_it(root):
    root, _ = root
    path = root / FILES["OBJ-ONLY", "test"]
    path.unlink()
    with pytest.raises(ObjectReadError, match=f"missing file: {path}"):
        scanobjectnn.read_split(root, "OBJ-ONLY", "test", POINTS)


def test_file_that_is_not_hdf5_is_an_error_naming_it(root):
    root, _ = root
    path = root / FILES["PB-T50-RS", "train"]
    path.write_bytes(b"not an hdf5 file")
    with pytest.raises(ObjectReadError, match=f"{path}: not a readable HDF5 file"):
        scanobjectnn.read_split(root, "PB-T50-RS", "train", POINTS)


@pytest.mark.parametrize("overrides, message", [
    ({"label": np.array([0, 1, 15], np.uint8)}, "labels outside 0..14: \\[0, 1, 15\\]"),
    ({"label": np.zeros(2, np.uint8)}, "expected data \\[M, N, 3\\] and label \\[M\\]"),
    ({"data": np.full((3, POINTS, 3), np.nan, np.float32)}, "contains NaN"),
])
def test_malformed_contents_are_errors_naming_the_file(root, overrides, message):
    root, _ = root
    path = root / FILES["OBJ-BG", "test"]
    write_h5(path, objects=3, seed=9, **overrides)
    with pytest.raises(ObjectReadError, match=f"{path}: {message}"):
        scanobjectnn.read_split(root, "OBJ-BG", "test", POINTS)


def test_missing_dataset_and_too_few_points_are_errors(root):
    root, _ = root
    path = root / FILES["OBJ-BG", "train"]
    with pytest.raises(ObjectReadError, match=f"{path}: objects have {POINTS} points, 2048 are needed"):
        scanobjectnn.read_split(root, "OBJ-BG", "train", 2048)
    with h5py.File(path, "a") as h5:
        del h5["label"]
    with pytest.raises(ObjectReadError, match=f"{path}: lacks datasets \\['label'\\]"):
        scanobjectnn.read_split(root, "OBJ-BG", "train", POINTS)
