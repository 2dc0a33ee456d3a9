"""Reader for ScanNet as Pointcept's preprocessing writes it (`preprocess_scannet.py`).

    <root>/<split>/<scene>/coord.npy      float32 [N, 3], metres
    <root>/<split>/<scene>/color.npy      [N, 3], 0..255 (uint8, or floats in that range)
    <root>/<split>/<scene>/segment20.npy  int [N], ScanNet-20 labels in SCANNET20_CLASS_NAMES order, -1 ignored
    <root>/<split>/<scene>/normal.npy     (not read: the scenes artefact keeps no normals)

Splits are the folders `train` and `val` (ScanNet's official split: Pointcept writes scannetv2_train.txt's
scenes to train/ and scannetv2_val.txt's to val/); `test` has no labels and is not read. Every problem
found is a SceneReadError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pix2point.io.coordinates import near_origin_float32
from pix2point.io.dataset_reader import ReadScene, SceneRef, SceneSourceParams
from pix2point.io.scenes_table import IGNORE_LABEL, SCANNET20_CLASS_NAMES, ScenePoints, SceneReadError

SPLITS = ("train", "val")
FILES = ("coord.npy", "color.npy", "segment20.npy")


def list_scenes(root: Path) -> dict[str, str]:
    """Scene -> split (train | val) for every scene folder under root/train and root/val."""
    if not root.is_dir():
        raise SceneReadError(f"Pointcept ScanNet root is not a directory: {root}")
    splits = {scene.name: split for split in SPLITS if (root / split).is_dir()
              for scene in sorted((root / split).iterdir()) if scene.is_dir()}
    if not splits:
        raise SceneReadError(f"no scenes under {root / 'train'} or {root / 'val'}")
    return splits


def read_scene(scene_dir: Path) -> ScenePoints:
    """xyz float32 [N, 3], rgb uint8 [N, 3], label int16 [N] (IGNORE_LABEL where unlabelled).

    An empty coord.npy, or one too far from the origin for its dtype to resolve a millimetre, is a
    SceneReadError naming it; a float64 one far out is moved near the origin (io/coordinates.py)."""
    coord, color, segment = (_load(scene_dir / name) for name in FILES)
    if coord.ndim != 2 or coord.shape[1] != 3 or not np.all(np.isfinite(coord)):
        raise SceneReadError(f"{scene_dir / 'coord.npy'}: expected finite [N, 3] coordinates, found {coord.dtype} {coord.shape}")
    xyz = near_origin_float32(coord, scene_dir / "coord.npy", SceneReadError)
    if color.shape != coord.shape or color.min(initial=0) < 0 or color.max(initial=0) > 255:
        raise SceneReadError(f"{scene_dir / 'color.npy'}: expected [{len(coord)}, 3] colours in 0..255, found {color.shape}")
    segment = segment.reshape(-1) if segment.ndim == 2 and segment.shape[1] == 1 else segment
    if segment.shape != (len(coord),) or not np.issubdtype(segment.dtype, np.integer):
        raise SceneReadError(f"{scene_dir / 'segment20.npy'}: expected [{len(coord)}] integer labels, found {segment.dtype} {segment.shape}")
    if segment.max(initial=-1) >= len(SCANNET20_CLASS_NAMES):
        raise SceneReadError(f"{scene_dir / 'segment20.npy'}: labels above {len(SCANNET20_CLASS_NAMES) - 1}")
    label = np.where(segment < 0, IGNORE_LABEL, segment).astype(np.int16)
    return ScenePoints(xyz=xyz, rgb=np.rint(color).astype(np.uint8), label=label)


def _load(path: Path) -> np.ndarray:
    if not path.is_file():
        raise SceneReadError(f"missing file: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise SceneReadError(f"{path}: not a NumPy .npy array ({error})") from error


# Scene reader (io/dataset_reader.py): the scenes stage's `source: pointcept_scannet`, points only; the
# train/ and val/ folders are the split.
ROOT_FOLDER = "Pointcept's scannet folder with train/ and val/"
FRAMES = False
CLASS_NAMES = SCANNET20_CLASS_NAMES


def scene_folders(params: SceneSourceParams) -> dict[str, Path]:
    return {name: Path(split, name) for name, split in list_scenes(params.root).items()}


def scene_splits(params: SceneSourceParams, scenes: list[str], warn: bool) -> dict[str, str]:
    splits = list_scenes(params.root)
    return {name: splits[name] for name in scenes}


def split_remedy(stage: str, params: SceneSourceParams) -> str:
    return f"{params.root}'s train/ and val/ folders are the split: each needs a scene folder"


def read_source_scene(params: SceneSourceParams, scene: SceneRef) -> ReadScene:
    return ReadScene(read_scene(scene.root / scene.folder))
