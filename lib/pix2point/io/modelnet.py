"""Reader for ModelNet40 in the `modelnet40_normal_resampled` layout (the one PointNet++ published).

    <root>/modelnet40_shape_names.txt          class names, one per line; a class's label is its line index
    <root>/modelnet40_train.txt                shape ids (`airplane_0001`), one per line
    <root>/modelnet40_test.txt
    <root>/<class>/<class>_<NNNN>.txt          rows `x,y,z,nx,ny,nz`, ordered by farthest point sampling

Shapes are upright along +y (UP_AXIS). Every problem found is an ObjectReadError naming the file.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2point.io.dataset_reader import ObjectSourceParams, ShapeEntry

SHAPE_NAMES_FILE = "modelnet40_shape_names.txt"
SPLIT_FILES = {"train": "modelnet40_train.txt", "test": "modelnet40_test.txt"}
UP_AXIS = 1  # y
COLUMNS = ("x", "y", "z", "nx", "ny", "nz")


class ObjectReadError(ValueError):
    """An object dataset file (ModelNet, ShapeNet-55, ScanObjectNN) is missing or malformed; the message names it."""


@dataclass(frozen=True)
class ModelNetIndex:
    class_names: list[str]
    shapes: list[ShapeEntry]  # train shapes first, each split in its file's order


def shape_id(class_name: str, number: int) -> str:
    return f"{class_name}_{number:04d}"


def shape_path(root: Path, shape: str) -> Path:
    return root / class_of(shape) / f"{shape}.txt"


def class_of(shape: str) -> str:
    """`night_stand_0007` -> `night_stand`; '' when the id lacks the `_<number>` suffix."""
    name, _, number = shape.rpartition("_")
    return name if number.isdigit() else ""


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise ObjectReadError(f"missing file: {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_class_names(root: Path) -> list[str]:
    path = root / SHAPE_NAMES_FILE
    names = _read_lines(path)
    if not names:
        raise ObjectReadError(f"{path}: lists no class")
    duplicates = sorted(name for name, times in Counter(names).items() if times > 1)
    if duplicates:
        raise ObjectReadError(f"{path}: classes listed twice: {duplicates}")
    return names


def read_split(root: Path, split: str, class_names: list[str]) -> list[ShapeEntry]:
    """The shapes a split file lists, each checked to be of a known class and to have its file."""
    split_path = root / SPLIT_FILES[split]
    label_of = {name: label for label, name in enumerate(class_names)}
    entries = []
    for shape in _read_lines(split_path):
        name = class_of(shape)
        if name not in label_of:
            raise ObjectReadError(f"{split_path}: shape {shape!r} is of no class listed in {root / SHAPE_NAMES_FILE}")
        path = shape_path(root, shape)
        if not path.is_file():
            raise ObjectReadError(f"{split_path} names shape {shape!r} but its file {path} does not exist")
        entries.append(ShapeEntry(shape=shape, label=label_of[name], split=split, path=path))
    if not entries:
        raise ObjectReadError(f"{split_path}: lists no shape")
    return entries


def read_index(root: Path) -> ModelNetIndex:
    """Class names and every train and test shape; a shape in both splits is an error."""
    if not root.is_dir():
        raise ObjectReadError(f"ModelNet root is not a directory: {root}")
    class_names = read_class_names(root)
    train, test = (read_split(root, split, class_names) for split in ("train", "test"))
    both = sorted({e.shape for e in train} & {e.shape for e in test})
    if both:
        raise ObjectReadError(f"{root / SPLIT_FILES['train']} and {root / SPLIT_FILES['test']} both list {both[:5]}")
    return ModelNetIndex(class_names=class_names, shapes=train + test)


def read_shape(path: Path, count: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`count` points and normals ([count, 3] float32 each) of one shape file.

    Without `rng` the first `count` rows (the files are in farthest-point order, so any prefix covers the
    shape) and only those are read; with `rng`, `count` rows drawn without replacement from the whole file.
    """
    rows = _load_rows(path, max_rows=None if rng is not None else count)
    if len(rows) < count:
        raise ObjectReadError(f"{path}: has {len(rows)} points, {count} are needed")
    if rng is not None:
        rows = rows[np.sort(rng.choice(len(rows), size=count, replace=False))]
    if not np.all(np.isfinite(rows)):
        raise ObjectReadError(f"{path}: contains NaN or infinite values")
    return np.ascontiguousarray(rows[:, :3]), np.ascontiguousarray(rows[:, 3:])


def _load_rows(path: Path, max_rows: int | None) -> np.ndarray:
    if not path.is_file():
        raise ObjectReadError(f"missing shape file: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty file: reported below as too few points
            rows = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2, max_rows=max_rows)
    except ValueError as error:
        raise ObjectReadError(f"{path}: not rows of {len(COLUMNS)} comma-separated numbers ({error})") from error
    if len(rows) and rows.shape[1] != len(COLUMNS):
        raise ObjectReadError(f"{path}: rows have {rows.shape[1]} columns, expected {len(COLUMNS)} ({','.join(COLUMNS)})")
    return rows


# Object reader (io/dataset_reader.py): the objects stage's `source: modelnet40` (and the layout `source:
# synthetic` writes).
ROOT_FOLDER = "modelnet40_normal_resampled"
LAYOUT = "file_per_object"


def object_index(params: ObjectSourceParams, root: Path) -> tuple[list[str], list[ShapeEntry]]:
    index = read_index(root)
    return index.class_names, index.shapes


def read_object(entry: ShapeEntry, count: int, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    return read_shape(entry.path, count, rng)
