"""Reader for ShapeNet-55 in the layout Point-BERT published (and Point-MAE and I2P-MAE pretrain on).

    <root>/ShapeNet-55/train.txt          file names `<synset>-<model>.npy`, one per line
    <root>/ShapeNet-55/test.txt
    <root>/shapenet_pc/<synset>-<model>.npy   float32 [8192, 3] points of one model, no normals

`root` is the `ShapeNet55-34` folder. A shape's class is its WordNet synset id (`02691156`); labels index
the sorted synsets of both lists. Shapes are upright along +y (UP_AXIS), ShapeNet's convention. Every
problem found is an ObjectReadError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pix2point.io.dataset_reader import ObjectSourceParams, ShapeEntry
from pix2point.io.modelnet import ObjectReadError

SPLIT_FILES = {"train": Path("ShapeNet-55", "train.txt"), "test": Path("ShapeNet-55", "test.txt")}
CLOUDS_DIR = "shapenet_pc"
UP_AXIS = 1  # y
POINTS_PER_FILE = 8192  # what Point-BERT's files hold; fewer is allowed, as long as `count` are there


def synset_of(file_name: str) -> str:
    """`02691156-1a04e3eab45ca15dd86060f189eb133.npy` -> `02691156`; '' when the name has no `-`."""
    synset, separator, model = file_name.partition("-")
    return synset if separator and synset.isdigit() and model.endswith(".npy") else ""


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise ObjectReadError(f"missing file: {path}")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    bad = [name for name in names if not synset_of(name)]
    if bad:
        raise ObjectReadError(f"{path}: lines {bad[:3]} are not `<synset>-<model>.npy` file names")
    if not names:
        raise ObjectReadError(f"{path}: lists no shape")
    return names


def read_index(root: Path) -> tuple[list[str], list[ShapeEntry]]:
    """(synset ids, every train then test shape); a shape listed in both splits or without its file is an error."""
    if not root.is_dir():
        raise ObjectReadError(f"ShapeNet-55 root is not a directory: {root}")
    lists = {split: _read_list(root / file) for split, file in SPLIT_FILES.items()}
    both = sorted(set(lists["train"]) & set(lists["test"]))
    if both:
        raise ObjectReadError(f"{root / SPLIT_FILES['train']} and {root / SPLIT_FILES['test']} both list {both[:5]}")
    synsets = sorted({synset_of(name) for names in lists.values() for name in names})
    label_of = {synset: label for label, synset in enumerate(synsets)}
    entries = []
    for split, names in lists.items():
        for name in names:
            path = root / CLOUDS_DIR / name
            if not path.is_file():
                raise ObjectReadError(f"{root / SPLIT_FILES[split]} names {name!r} but its file {path} does not exist")
            entries.append(ShapeEntry(shape=name.removesuffix(".npy"), label=label_of[synset_of(name)], split=split, path=path))
    return synsets, entries


def read_cloud(path: Path, count: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """`count` points ([count, 3] float32) of one `.npy` file: its first rows, or without replacement with `rng`."""
    try:
        points = np.load(path, allow_pickle=False)
    except FileNotFoundError as error:
        raise ObjectReadError(f"missing shape file: {path}") from error
    except (ValueError, OSError, EOFError) as error:
        raise ObjectReadError(f"{path}: not a NumPy .npy array ({error})") from error
    if points.ndim != 2 or points.shape[1] != 3 or not np.issubdtype(points.dtype, np.floating):
        raise ObjectReadError(f"{path}: expected float points of shape [N, 3], found {points.dtype} {points.shape}")
    if len(points) < count:
        raise ObjectReadError(f"{path}: has {len(points)} points, {count} are needed")
    rows = np.sort(rng.choice(len(points), size=count, replace=False)) if rng is not None else slice(count)
    points = np.ascontiguousarray(points[rows], np.float32)
    if not np.all(np.isfinite(points)):
        raise ObjectReadError(f"{path}: contains NaN or infinite values")
    return points


# Object reader (io/dataset_reader.py): the objects stage's `source: shapenet55`; no normals.
ROOT_FOLDER = "ShapeNet55-34"
LAYOUT = "file_per_object"


def object_index(params: ObjectSourceParams, root: Path) -> tuple[list[str], list[ShapeEntry]]:
    return read_index(root)


def read_object(entry: ShapeEntry, count: int, rng: np.random.Generator | None) -> tuple[np.ndarray, None]:
    return read_cloud(entry.path, count, rng), None
