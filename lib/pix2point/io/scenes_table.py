"""The `scenes` artefact: its layout, Arrow schemas, and the readers every downstream stage uses.

    <artefact>/frames.parquet          one row per usable RGB-D frame (absent for a point-only source)
    <artefact>/points/<scene>.parquet  the labelled scan of one scene
    <artefact>/splits.parquet          scene -> train | val
    <artefact>/source/                 (synthetic source only) the generated ScanNet-layout tree

Image paths in the frames table are relative to the data root recorded in the table's metadata
(`data_root`): an absolute path for a user's data, or a path relative to the artefact directory for
data the stage generated itself, so the artefact stays valid when it is renamed or moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pix2point.io.arrow import fixed_list_column, fixed_list_to_numpy, read_metadata, with_metadata

FRAMES_FILE = "frames.parquet"
POINTS_DIR = "points"
SPLITS_FILE = "splits.parquet"
SOURCE_DIR = "source"

IGNORE_LABEL = -1

# The 20 classes of the ScanNet semantic-segmentation benchmark, as NYU40 ids (the ids ScanNet's
# *_vh_clean_2.labels.ply carry); every other id maps to IGNORE_LABEL.
SCANNET20_NYU40_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
SCANNET20_CLASS_NAMES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink",
    "bathtub", "otherfurniture",
)

FRAMES_SCHEMA = pa.schema([
    pa.field("scene", pa.string(), nullable=False),
    pa.field("frame", pa.int32(), nullable=False),
    pa.field("color_path", pa.string(), nullable=False),
    pa.field("depth_path", pa.string(), nullable=False),
    pa.field("pose", pa.list_(pa.float64(), 16), nullable=False),  # camera-to-world, row-major 4x4
    pa.field("color_intrinsics", pa.list_(pa.float64(), 9), nullable=False),  # row-major 3x3
    pa.field("color_width", pa.int32(), nullable=False),
    pa.field("color_height", pa.int32(), nullable=False),
    pa.field("depth_intrinsics", pa.list_(pa.float64(), 9), nullable=False),
    pa.field("depth_width", pa.int32(), nullable=False),
    pa.field("depth_height", pa.int32(), nullable=False),
    pa.field("depth_scale", pa.float32(), nullable=False),  # depth in metres = png value / depth_scale
])

POINTS_SCHEMA = pa.schema([
    pa.field("xyz", pa.list_(pa.float32(), 3), nullable=False),
    pa.field("rgb", pa.list_(pa.uint8(), 3), nullable=False),
    pa.field("label", pa.int16(), nullable=False),
])

SPLITS_SCHEMA = pa.schema([pa.field("scene", pa.string(), nullable=False), pa.field("split", pa.string(), nullable=False)])


class SceneReadError(ValueError):
    """A scene cannot be read at all; the message names the file."""


@dataclass(frozen=True)
class Frame:
    """One RGB-D frame with its geometry, as stored in a frames-table row."""

    scene: str
    frame: int
    color_path: Path
    depth_path: Path
    pose: np.ndarray  # [4, 4] camera-to-world
    color_intrinsics: np.ndarray  # [3, 3]
    color_size: tuple[int, int]  # (width, height)
    depth_intrinsics: np.ndarray  # [3, 3]
    depth_size: tuple[int, int]
    depth_scale: float


@dataclass(frozen=True)
class ScenePoints:
    xyz: np.ndarray  # [N, 3] float32, world frame
    rgb: np.ndarray  # [N, 3] uint8
    label: np.ndarray  # [N] int16, IGNORE_LABEL where unlabelled


def frames_table(frames: list[Frame], data_root: str) -> pa.Table:
    """Rows for `frames`; their paths must already be relative to `data_root`."""
    columns = {
        "scene": pa.array([f.scene for f in frames], pa.string()),
        "frame": pa.array([f.frame for f in frames], pa.int32()),
        "color_path": pa.array([str(f.color_path) for f in frames], pa.string()),
        "depth_path": pa.array([str(f.depth_path) for f in frames], pa.string()),
        "pose": fixed_list_column(np.array([f.pose for f in frames], np.float64).reshape(-1, 16)),
        "color_intrinsics": fixed_list_column(np.array([f.color_intrinsics for f in frames], np.float64).reshape(-1, 9)),
        "color_width": pa.array([f.color_size[0] for f in frames], pa.int32()),
        "color_height": pa.array([f.color_size[1] for f in frames], pa.int32()),
        "depth_intrinsics": fixed_list_column(np.array([f.depth_intrinsics for f in frames], np.float64).reshape(-1, 9)),
        "depth_width": pa.array([f.depth_size[0] for f in frames], pa.int32()),
        "depth_height": pa.array([f.depth_size[1] for f in frames], pa.int32()),
        "depth_scale": pa.array([f.depth_scale for f in frames], pa.float32()),
    }
    table = pa.Table.from_pydict(columns, schema=FRAMES_SCHEMA)
    return with_metadata(table, {"data_root": data_root})


class NoFramesError(ValueError):
    """A stage that needs RGB-D frames was given a point-only scenes artefact."""


def frames_file(scenes_dir: Path) -> Path:
    """The frames table; NoFramesError when the artefact is point-only (pointcept_scannet, s3dis)."""
    path = scenes_dir / FRAMES_FILE
    if not path.is_file():
        raise NoFramesError(
            f"{path} does not exist: the scenes artefact {scenes_dir} is point-only (source pointcept_scannet or "
            "s3dis), without RGB-D frames. features2d, pairs and pretrain need a frames source (scannet, synthetic); "
            "point-only scenes are for finetune and evaluate (pipelines/ppkt_s3dis.yaml shows both together)."
        )
    return path


def data_root(scenes_dir: Path) -> Path:
    """Where the frames table's image paths are rooted (see module docstring)."""
    root = Path(read_metadata(frames_file(scenes_dir))["data_root"])
    return root if root.is_absolute() else scenes_dir / root


def read_frames(scenes_dir: Path, scenes: list[str] | None = None) -> list[Frame]:
    """Frames of the scenes artefact (optionally only `scenes`), with absolute image paths."""
    table = pq.read_table(frames_file(scenes_dir))
    if scenes is not None:
        table = table.filter(pa.compute.is_in(table["scene"], pa.array(scenes, pa.string())))
    root = data_root(scenes_dir)
    poses = fixed_list_to_numpy(table["pose"], (4, 4))
    color_k = fixed_list_to_numpy(table["color_intrinsics"], (3, 3))
    depth_k = fixed_list_to_numpy(table["depth_intrinsics"], (3, 3))
    rows = table.select(["scene", "frame", "color_path", "depth_path", "color_width", "color_height",
                         "depth_width", "depth_height", "depth_scale"]).to_pylist()
    return [
        Frame(
            scene=row["scene"], frame=row["frame"],
            color_path=root / row["color_path"], depth_path=root / row["depth_path"],
            pose=poses[i], color_intrinsics=color_k[i], color_size=(row["color_width"], row["color_height"]),
            depth_intrinsics=depth_k[i], depth_size=(row["depth_width"], row["depth_height"]),
            depth_scale=float(row["depth_scale"]),
        )
        for i, row in enumerate(rows)
    ]


def points_path(scenes_dir: Path, scene: str) -> Path:
    return scenes_dir / POINTS_DIR / f"{scene}.parquet"


def points_table(points: ScenePoints, class_names: tuple[str, ...]) -> pa.Table:
    table = pa.Table.from_pydict(
        {
            "xyz": fixed_list_column(points.xyz.astype(np.float32)),
            "rgb": fixed_list_column(points.rgb.astype(np.uint8)),
            "label": pa.array(points.label.astype(np.int16)),
        },
        schema=POINTS_SCHEMA,
    )
    return with_metadata(table, {"ignore_label": IGNORE_LABEL, "class_names": list(class_names)})


def read_points(scenes_dir: Path, scene: str) -> ScenePoints:
    return points_from_table(pq.read_table(points_path(scenes_dir, scene)))


def points_from_table(table: pa.Table) -> ScenePoints:
    """A points file's table (POINTS_SCHEMA) as arrays."""
    return ScenePoints(
        xyz=fixed_list_to_numpy(table["xyz"], (3,)),
        rgb=fixed_list_to_numpy(table["rgb"], (3,)),
        label=table["label"].to_numpy(),
    )


def class_names(scenes_dir: Path, scene: str) -> list[str]:
    return read_metadata(points_path(scenes_dir, scene))["class_names"]


def read_splits(scenes_dir: Path) -> dict[str, str]:
    table = pq.read_table(scenes_dir / SPLITS_FILE)
    return dict(zip(table["scene"].to_pylist(), table["split"].to_pylist()))


def scene_names(scenes_dir: Path) -> list[str]:
    return sorted(read_splits(scenes_dir))
