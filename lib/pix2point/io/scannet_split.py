"""ScanNet's train/val split: the official scene lists, or a random split that keeps each room on one side.

The official lists are the ScanNet repository's `Tasks/Benchmark/scannetv2_train.txt` and
`scannetv2_val.txt` (1201 and 312 scans, one `sceneXXXX_YY` per line). No PyPI package ships them (every
public loader reads them from a user-given path or downloads them), so the user gives their paths. ScanNet
scans some rooms several times (`scene0000_00`, `scene0000_01`: room 0 twice); the official split keeps a
room's scans together, and so does `grouped_random_split`, so no room is on both sides.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from pix2point.io.dataset_reader import SceneSourceParams, SplitFilesParams
from pix2point.io.scenes_table import SceneReadError

log = logging.getLogger(__name__)

SCENE_PATTERN = re.compile(r"(scene\d{4})_\d{2}")


def room_of(scene: str) -> str:
    """`scene0000_01` -> `scene0000`; a name outside ScanNet's pattern is its own room."""
    match = SCENE_PATTERN.fullmatch(scene)
    return match.group(1) if match else scene


def read_scene_list(path: Path) -> list[str]:
    """The scene ids of one list file; SceneReadError naming the file if it is missing or has a bad line."""
    if not path.is_file():
        raise SceneReadError(
            f"missing split file: {path} (ScanNet's Tasks/Benchmark/scannetv2_train.txt or scannetv2_val.txt)")
    scenes = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    bad = [(number, line) for number, line in enumerate(scenes, 1) if not SCENE_PATTERN.fullmatch(line)]
    if bad:
        raise SceneReadError(f"{path}: lines that are not ScanNet scene ids (sceneXXXX_YY): {bad[:3]}")
    if not scenes:
        raise SceneReadError(f"{path}: lists no scene")
    return scenes


def official_split(train_file: Path, val_file: Path) -> dict[str, str]:
    """Scene -> train | val from the two list files; a scene or a room in both is an error naming the files."""
    split = {scene: "train" for scene in read_scene_list(train_file)}
    val = read_scene_list(val_file)
    both = sorted(set(split) & set(val))
    shared_rooms = sorted({room_of(s) for s in split} & {room_of(s) for s in val})
    if both or shared_rooms:
        raise SceneReadError(f"{train_file} and {val_file} share scenes {both[:5]} or rooms {shared_rooms[:5]}")
    return split | {scene: "val" for scene in val}


def grouped_random_split(scenes: list[str], val_fraction: float, seed: int) -> dict[str, str]:
    """Scene -> train | val: `val_fraction` of the rooms (at least one when there are two or more), drawn with
    `seed`, go to val with all their scans."""
    rooms = sorted({room_of(scene) for scene in scenes})
    count = max(1, round(len(rooms) * val_fraction)) if len(rooms) > 1 else 0
    val_rooms = set(np.random.default_rng(seed).choice(rooms, size=count, replace=False).tolist())
    return {scene: "val" if room_of(scene) in val_rooms else "train" for scene in sorted(scenes)}


def params_split(names: list[str], params: SceneSourceParams, warn: bool = False) -> dict[str, str]:
    """Scene -> train | val for the scenes read, as the scenes stage's params ask: explicit `val_scenes`,
    else ScanNet's official `split_files` (only the listed scenes; `warn`: log the scenes left out), else
    `val_fraction` of the rooms drawn with `split_seed`. ValueError for a val scene that was not read."""
    if params.val_scenes is not None:
        unknown = sorted(set(params.val_scenes) - set(names))
        if unknown:
            raise ValueError(f"scenes: val_scenes {unknown} are not among the scenes read")
        return {name: "val" if name in params.val_scenes else "train" for name in sorted(names)}
    if params.split_files is not None:
        return listed_splits(names, params.split_files, warn)
    return grouped_random_split(names, params.val_fraction, params.split_seed)


def listed_splits(names: list[str], files: SplitFilesParams, warn: bool = False) -> dict[str, str]:
    official = official_split(files.train, files.val)
    unlisted = sorted(set(names) - set(official))
    if unlisted and warn:
        log.warning("%d scenes are in neither %s nor %s and are left out: %s", len(unlisted), files.train, files.val, unlisted[:5])
    absent = set(official) - set(names)
    if absent and warn:
        log.warning("%d scenes of the split files are not among the scenes read", len(absent))
    splits = {name: official[name] for name in sorted(names) if name in official}
    if set(splits.values()) != {"train", "val"}:
        raise SceneReadError(
            f"none of the scenes read is listed in {files.train if 'train' not in splits.values() else files.val}")
    return splits
