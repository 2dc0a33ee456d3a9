"""Reader for S3DIS in its published layout, `Stanford3dDataset_v1.2_Aligned_Version`.

    <root>/Area_<N>/<room>/Annotations/<class>_<i>.txt   one object: rows `x y z r g b` (metres, 0..255)

A room's points are the union of its objects, each labelled by the class its file name starts with
(S3DIS13_CLASS_NAMES; the few other names, `stairs`, count as clutter, as PointNet's and Pointcept's
preprocessing do). The room-level `<room>.txt` holds the same points unlabelled and is not read. Rooms
are named `Area_<N>_<room>`. Every problem found is an S3DISReadError naming the file; one known in the
published data: Area_5/hallway_6/Annotations/ceiling_1.txt has a stray character on one row, which users
fix by hand as the PointNet and Pointcept instructions say.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from pix2point.io.coordinates import near_origin_float32
from pix2point.io.dataset_reader import ReadScene, SceneRef, SceneSourceParams
from pix2point.io.scenes_table import ScenePoints

log = logging.getLogger(__name__)

S3DIS13_CLASS_NAMES = (
    "ceiling", "floor", "wall", "beam", "column", "window", "door", "table", "chair", "sofa", "bookcase",
    "board", "clutter",
)
CLUTTER = S3DIS13_CLASS_NAMES.index("clutter")
AREA_PATTERN = re.compile(r"Area_(\d+)")
COLUMNS = ("x", "y", "z", "r", "g", "b")


class S3DISReadError(ValueError):
    """An S3DIS file or folder is missing or malformed; the message names it."""


def list_rooms(root: Path) -> dict[str, Path]:
    """Room name (`Area_1_office_1`) -> its folder, for every room with an Annotations/ folder."""
    if not root.is_dir():
        raise S3DISReadError(f"S3DIS root is not a directory: {root}")
    rooms = {
        f"{area.name}_{room.name}": room
        for area in sorted(root.iterdir()) if AREA_PATTERN.fullmatch(area.name)
        for room in sorted(area.iterdir()) if (room / "Annotations").is_dir()
    }
    if not rooms:
        raise S3DISReadError(f"no rooms (Area_<N>/<room>/Annotations/) under {root}")
    return rooms


def area_of(room_name: str) -> int:
    """`Area_5_office_1` -> 5."""
    match = AREA_PATTERN.match(room_name)
    if match is None:
        raise ValueError(f"{room_name!r} is not an S3DIS room name (Area_<N>_<room>)")
    return int(match.group(1))


def read_room(room_dir: Path) -> ScenePoints:
    """All objects of one room: xyz float32 [N, 3] metres, rgb uint8 [N, 3], label int16 [N] (S3DIS13 order).

    Rows are parsed as float64 and the room is moved near the origin when float32 could not keep its points
    apart where it lies (io/coordinates.py: near_origin_float32, which names the room's Annotations folder)."""
    files = sorted((room_dir / "Annotations").glob("*.txt"))
    if not files:
        raise S3DISReadError(f"{room_dir / 'Annotations'}: no object files (<class>_<i>.txt)")
    label_of = {name: label for label, name in enumerate(S3DIS13_CLASS_NAMES)}
    rows, labels = [], []
    for path in files:
        name = path.stem.rpartition("_")[0] or path.stem
        if name not in label_of:
            log.info("%s: class %r is not among the 13 and counts as clutter", path, name)
        object_rows = read_object_rows(path)
        rows.append(object_rows)
        labels.append(np.full(len(object_rows), label_of.get(name, CLUTTER), np.int16))
    rows = np.concatenate(rows)
    xyz = near_origin_float32(rows[:, :3], room_dir / "Annotations", S3DISReadError)
    return ScenePoints(xyz=xyz, rgb=rows[:, 3:].astype(np.uint8), label=np.concatenate(labels))


def read_object_rows(path: Path) -> np.ndarray:
    """[N, 6] float64 rows of one object file (float64: a georeferenced room keeps its centimetres until it is
    moved near the origin); a malformed row or colour is an error naming the file."""
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(column_names=list(COLUMNS)),
            parse_options=pa_csv.ParseOptions(delimiter=" ", ignore_empty_lines=True),
            convert_options=pa_csv.ConvertOptions(column_types={name: pa.float64() for name in COLUMNS}),
        )
    except FileNotFoundError as error:
        raise S3DISReadError(f"missing file: {path}") from error
    except (pa.ArrowInvalid, OSError) as error:
        raise S3DISReadError(f"{path}: not rows of 6 space-separated numbers x y z r g b ({error})") from error
    rows = np.stack([table[name].to_numpy() for name in COLUMNS], axis=1) if table.num_rows else np.zeros((0, 6), np.float64)
    if not len(rows):
        raise S3DISReadError(f"{path}: holds no points")
    if not np.all(np.isfinite(rows)):
        raise S3DISReadError(f"{path}: contains NaN or infinite values")
    if rows[:, 3:].min() < 0 or rows[:, 3:].max() > 255:
        raise S3DISReadError(f"{path}: colours outside 0..255")
    return rows


# Scene reader (io/dataset_reader.py): the scenes stage's `source: s3dis`, points only; the rooms of
# `s3dis_val_area` are val, the others train.
ROOT_FOLDER = "Stanford3dDataset_v1.2_Aligned_Version"
FRAMES = False
CLASS_NAMES = S3DIS13_CLASS_NAMES


def scene_folders(params: SceneSourceParams) -> dict[str, Path]:
    return {name: path.relative_to(params.root) for name, path in list_rooms(params.root).items()}


def scene_splits(params: SceneSourceParams, scenes: list[str], warn: bool) -> dict[str, str]:
    return {name: "val" if area_of(name) == params.s3dis_val_area else "train" for name in scenes}


def split_remedy(stage: str, params: SceneSourceParams) -> str:
    return f"set {stage}.s3dis_val_area to another of the areas under {params.root}"


def read_source_scene(params: SceneSourceParams, scene: SceneRef) -> ReadScene:
    return ReadScene(read_room(scene.root / scene.folder))
