"""Reader for ScanObjectNN's h5 files, in the layout its authors published (`h5_files/`).

    <root>/main_split/training_objectdataset.h5                       OBJ-BG: objects with background
    <root>/main_split/test_objectdataset.h5
    <root>/main_split_nobg/training_objectdataset.h5                  OBJ-ONLY: background removed
    <root>/main_split_nobg/test_objectdataset.h5
    <root>/main_split/training_objectdataset_augmentedrot_scale75.h5  PB-T50-RS: boxes shifted by up to 50 %,
    <root>/main_split/test_objectdataset_augmentedrot_scale75.h5        rotated and scaled (the hardest variant)

Each file holds `data` (float32 [M, 2048, 3]) and `label` (int [M] or [M, 1], 0..14, CLASS_NAMES order); `mask`
(background points) is not read. `root` is the `h5_files` folder. Objects are upright along +y (UP_AXIS):
the authors' and Point-BERT's augmentations rotate about y. Every problem found is an ObjectReadError
naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

import h5py
import numpy as np

from pix2point.io.dataset_reader import ObjectSourceParams
from pix2point.io.modelnet import ObjectReadError

Variant = Literal["OBJ-BG", "OBJ-ONLY", "PB-T50-RS"]
VARIANT_FILES: dict[str, tuple[str, str]] = {  # variant -> (folder, file suffix)
    "OBJ-BG": ("main_split", ""),
    "OBJ-ONLY": ("main_split_nobg", ""),
    "PB-T50-RS": ("main_split", "_augmentedrot_scale75"),
}
SPLIT_PREFIXES = {"train": "training", "test": "test"}
CLASS_NAMES = (
    "bag", "bin", "box", "cabinet", "chair", "desk", "display", "door", "shelf", "table",
    "bed", "pillow", "sink", "sofa", "toilet",
)
UP_AXIS = 1  # y


class ScanObjects(NamedTuple):
    points: np.ndarray  # [M, N, 3] float32
    labels: np.ndarray  # [M] int16, indices into CLASS_NAMES


def split_path(root: Path, variant: Variant, split: str) -> Path:
    folder, suffix = VARIANT_FILES[variant]
    return root / folder / f"{SPLIT_PREFIXES[split]}_objectdataset{suffix}.h5"


def shape_ids(split: str, count: int) -> list[str]:
    """The files name no object: an object is `<split>_<row>`, its row in the split's file."""
    return [f"{split}_{row:05d}" for row in range(count)]


def read_split(root: Path, variant: Variant, split: str, count: int) -> ScanObjects:
    """Every object of one split file, with all its points; an error if they have fewer than `count`."""
    path = split_path(root, variant, split)
    if not path.is_file():
        raise ObjectReadError(f"missing file: {path} (ScanObjectNN {variant} {split} split)")
    try:
        with h5py.File(path, "r") as h5:
            missing = [key for key in ("data", "label") if key not in h5]
            if missing:
                raise ObjectReadError(f"{path}: lacks datasets {missing} (has {sorted(h5)})")
            data, label = h5["data"], h5["label"]
            if data.ndim != 3 or data.shape[2] != 3 or label.shape not in ((data.shape[0],), (data.shape[0], 1)):
                raise ObjectReadError(f"{path}: expected data [M, N, 3] and label [M], found {data.shape} and {label.shape}")
            if data.shape[1] < count:
                raise ObjectReadError(f"{path}: objects have {data.shape[1]} points, {count} are needed")
            points = np.asarray(data, np.float32)
            labels = np.asarray(label[:]).reshape(-1)
    except OSError as error:
        raise ObjectReadError(f"{path}: not a readable HDF5 file ({error})") from error
    if not np.all((labels >= 0) & (labels < len(CLASS_NAMES))):
        raise ObjectReadError(f"{path}: labels outside 0..{len(CLASS_NAMES) - 1}: {sorted(set(labels.tolist()))[:10]}")
    if not np.all(np.isfinite(points)):
        raise ObjectReadError(f"{path}: contains NaN or infinite values")
    return ScanObjects(points=points, labels=labels.astype(np.int16))


# Object reader (io/dataset_reader.py): the objects stage's `source: scanobjectnn`, one h5 file per split
# of the `variant`; no normals.
ROOT_FOLDER = "h5_files"
LAYOUT = "file_per_split"


def read_split_objects(params: ObjectSourceParams, split: str) -> ScanObjects:
    return read_split(params.root, params.variant, split, params.points_per_object)
