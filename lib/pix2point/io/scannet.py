"""Reader for ScanNet exported scenes (the layout of ScanNet's SensReader export plus the scan meshes).

    <root>/<scene>/color/<i>.jpg                      RGB frames
    <root>/<scene>/depth/<i>.png                      uint16 depth, metres * depth_scale, 0 = no measurement
    <root>/<scene>/pose/<i>.txt                       4x4 camera-to-world (ScanNet marks lost tracking with -inf)
    <root>/<scene>/intrinsic/intrinsic_color.txt      4x4, K in the top-left 3x3
    <root>/<scene>/intrinsic/intrinsic_depth.txt
    <root>/<scene>/<scene>_vh_clean_2.ply             the scan: vertices x, y, z, red, green, blue
    <root>/<scene>/<scene>_vh_clean_2.labels.ply      optional: the same vertices with an NYU40 `label`
    <root>/<scene>/<scene>.txt                        ScanNet's scene metadata: `axisAlignment = <16 numbers>`

The reader of `source: scannet` (io/dataset_reader.py `SceneReader`: the names after "Scene reader" below).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from plyfile import PlyData

from pix2point.io.coordinates import fixed_frame_float32
from pix2point.io.dataset_reader import ReadScene, SceneRef, SceneSourceParams
from pix2point.io.scenes_table import (
    IGNORE_LABEL, SCANNET20_CLASS_NAMES, SCANNET20_NYU40_IDS, Frame, ScenePoints, SceneReadError,
)
from pix2point.io.scannet_split import params_split

log = logging.getLogger(__name__)

NYU40_MAX_ID = 40  # labels.ply holds NYU40 class ids 1..40, 0 where a vertex is unannotated


@dataclass(frozen=True)
class SceneFrames:
    frames: list[Frame]
    skipped: Counter  # reason -> count


def list_scenes(root: Path) -> list[str]:
    if not root.is_dir():
        raise SceneReadError(f"ScanNet root is not a directory: {root}")
    scenes = sorted(entry.name for entry in root.iterdir() if (entry / "color").is_dir())
    if not scenes:
        raise SceneReadError(f"no scenes (directories with a color/ folder) under {root}")
    return scenes


def read_matrix(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A whitespace-separated matrix file; SceneReadError naming the file if absent or malformed."""
    if not path.is_file():
        raise SceneReadError(f"missing file: {path}")
    try:
        values = np.loadtxt(path, dtype=np.float64)
    except ValueError as error:
        raise SceneReadError(f"{path}: not a numeric matrix ({error})") from error
    if values.shape != shape:
        raise SceneReadError(f"{path}: expected a {shape[0]}x{shape[1]} matrix, found shape {values.shape}")
    return values


def read_intrinsics(path: Path) -> np.ndarray:
    matrix = read_matrix(path, (4, 4))[:3, :3]
    if not np.all(np.isfinite(matrix)) or matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
        raise SceneReadError(f"{path}: intrinsics need finite, positive focal lengths, found {matrix.tolist()}")
    return matrix


def read_scan(scene_dir: Path) -> ScenePoints:
    """The scan's vertices with ScanNet-20 labels (IGNORE_LABEL for other classes or no labels file)."""
    return read_scan_counting(scene_dir)[0]


def read_scan_counting(scene_dir: Path) -> tuple[ScenePoints, Counter]:
    """(read_scan's points, what was left unlabelled: Counter with "unknown_nyu40_id_points", vertices whose
    labels.ply id is no NYU40 id, 0..40 (ScanNet/ScanNet#86: three scenes carry id 50), and "scans_without_labels"
    (1 when labels.ply is absent)); each logged with the scene's name.

    A scan without vertices, or too far from the origin for float32 to keep a millimetre (the poses share its
    frame, so it is not moved: io/coordinates.py), is a SceneReadError naming its PLY.
    """
    scan_path = scene_dir / f"{scene_dir.name}_vh_clean_2.ply"
    vertices = _read_ply_vertices(scan_path, ("x", "y", "z", "red", "green", "blue"))
    xyz = np.stack([vertices["x"], vertices["y"], vertices["z"]], axis=1)
    if not np.all(np.isfinite(xyz)):
        raise SceneReadError(f"{scan_path}: vertex coordinates contain NaN or inf")
    xyz = fixed_frame_float32(xyz, scan_path, SceneReadError)
    rgb = np.stack([vertices["red"], vertices["green"], vertices["blue"]], axis=1).astype(np.uint8)
    labels_path = scene_dir / f"{scene_dir.name}_vh_clean_2.labels.ply"
    skipped = Counter()
    if labels_path.is_file():
        nyu40 = np.asarray(_read_ply_vertices(labels_path, ("label",))["label"], np.int64)
        if len(nyu40) != len(xyz):
            raise SceneReadError(f"{labels_path}: {len(nyu40)} labelled vertices but the scan has {len(xyz)}")
        unknown = (nyu40 < 0) | (nyu40 > NYU40_MAX_ID)
        if unknown.any():
            log.warning("%s: %d vertices carry ids outside NYU40's 0..%d (%s) and stay unlabelled", labels_path,
                        unknown.sum(), NYU40_MAX_ID, np.unique(nyu40[unknown])[:5].tolist())
            skipped["unknown_nyu40_id_points"] = int(unknown.sum())
        label = nyu40_to_scannet20(nyu40)
    else:
        log.warning("no labels file %s: all points of %s are unlabelled", labels_path, scene_dir.name)
        skipped["scans_without_labels"] = 1
        label = np.full(len(xyz), IGNORE_LABEL, np.int16)
    return ScenePoints(xyz=xyz, rgb=rgb, label=label), skipped


def read_axis_alignment(scene_dir: Path) -> np.ndarray:
    """[4, 4] float64: ScanNet's axisAlignment of a scene, the rigid map from the scan's frame to one whose
    axes follow the room's walls (ScanNet's `<scene>.txt`; VoteNet's scannet/load_scannet_data.py applies it
    to the mesh before taking axis-aligned boxes). A metadata file without the line is the identity, logged
    (ScanNet's test scans have none). Missing file, malformed or non-finite matrix: SceneReadError naming it.
    """
    path = scene_dir / f"{scene_dir.name}.txt"
    if not path.is_file():
        raise SceneReadError(f"missing scene metadata (axisAlignment): {path}; set scenes.axis_align=false "
                             f"to keep every scan in its own frame")
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() != "axisAlignment":
            continue
        try:
            matrix = np.array([float(v) for v in value.split()], np.float64)
        except ValueError as error:
            raise SceneReadError(f"{path}: axisAlignment is not numeric ({error})") from error
        if matrix.size != 16 or not np.all(np.isfinite(matrix)):
            raise SceneReadError(f"{path}: axisAlignment needs 16 finite numbers, found {matrix.size}")
        return matrix.reshape(4, 4)
    log.warning("%s has no axisAlignment line: %s stays in its scan frame", path, scene_dir.name)
    return np.eye(4)


def aligned(points: ScenePoints, frames: list[Frame], alignment: np.ndarray) -> tuple[ScenePoints, list[Frame]]:
    """The scan's vertices and the camera-to-world poses moved by `alignment` [4, 4], so that projecting a
    point with its frame's pose finds the same pixel as before."""
    xyz = (points.xyz.astype(np.float64) @ alignment[:3, :3].T + alignment[:3, 3]).astype(np.float32)
    moved = [replace(frame, pose=alignment @ frame.pose) for frame in frames]
    return ScenePoints(xyz=xyz, rgb=points.rgb, label=points.label), moved


def nyu40_to_scannet20(nyu40: np.ndarray) -> np.ndarray:
    lookup = np.full(256, IGNORE_LABEL, np.int16)
    lookup[list(SCANNET20_NYU40_IDS)] = np.arange(len(SCANNET20_NYU40_IDS), dtype=np.int16)
    ids = np.asarray(nyu40, np.int64)
    return np.where((ids >= 0) & (ids < 256), lookup[np.clip(ids, 0, 255)], IGNORE_LABEL).astype(np.int16)


def _read_ply_vertices(path: Path, properties: tuple[str, ...]) -> np.ndarray:
    if not path.is_file():
        raise SceneReadError(f"missing scan file: {path}")
    try:
        vertices = PlyData.read(str(path))["vertex"].data
    except Exception as error:  # plyfile raises several types for truncated or malformed files
        raise SceneReadError(f"{path}: unreadable PLY ({type(error).__name__}: {error})") from error
    missing = [name for name in properties if name not in vertices.dtype.names]
    if missing:
        raise SceneReadError(f"{path}: vertex element lacks properties {missing}")
    return vertices


def read_scene_frames(root: Path, scene: str, depth_scale: float, frame_step: int = 1) -> SceneFrames:
    """Every `frame_step`-th frame of a scene that is usable; the others are skipped, logged and counted.

    Image paths in the result are relative to `root`.
    """
    scene_dir = root / scene
    color_intrinsics = read_intrinsics(scene_dir / "intrinsic" / "intrinsic_color.txt")
    depth_intrinsics = read_intrinsics(scene_dir / "intrinsic" / "intrinsic_depth.txt")
    frames, skipped = [], Counter()
    for frame_id in frame_ids(scene_dir)[::frame_step]:
        frame, reason = _read_frame(root, scene, frame_id, color_intrinsics, depth_intrinsics, depth_scale)
        if frame is None:
            skipped[reason] += 1
        else:
            frames.append(frame)
    if not frames:
        raise SceneReadError(f"{scene_dir}: no usable frame (skipped: {dict(skipped)})")
    return SceneFrames(frames=frames, skipped=skipped)


def frame_ids(scene_dir: Path) -> list[int]:
    """Ids found in any of color/, depth/ and pose/, so a frame missing one of its files is reported, not unseen."""
    found = set()
    for folder, suffix in (("color", ".jpg"), ("depth", ".png"), ("pose", ".txt")):
        found.update(int(path.stem) for path in (scene_dir / folder).glob(f"*{suffix}") if path.stem.isdigit())
    return sorted(found)


def _read_frame(root, scene, frame_id, color_intrinsics, depth_intrinsics, depth_scale) -> tuple[Frame | None, str]:
    color_path = Path(scene) / "color" / f"{frame_id}.jpg"
    depth_path = Path(scene) / "depth" / f"{frame_id}.png"
    pose_path = root / scene / "pose" / f"{frame_id}.txt"

    def skip(reason: str, path: Path) -> tuple[None, str]:
        log.warning("skipping frame %s/%d: %s (%s)", scene, frame_id, reason.replace("_", " "), path)
        return None, reason

    for kind, path in (("pose", pose_path), ("color", root / color_path), ("depth", root / depth_path)):
        if not path.is_file():
            return skip(f"missing_{kind}", path)
    try:
        pose = read_matrix(pose_path, (4, 4))
    except SceneReadError:
        return skip("malformed_pose", pose_path)
    if not np.all(np.isfinite(pose)):
        return skip("nonfinite_pose", pose_path)
    color = cv2.imread(str(root / color_path), cv2.IMREAD_COLOR)
    if color is None:
        return skip("unreadable_color", root / color_path)
    depth = cv2.imread(str(root / depth_path), cv2.IMREAD_UNCHANGED)
    if depth is None or depth.dtype != np.uint16 or depth.ndim != 2:
        return skip("unreadable_depth", root / depth_path)
    if not depth.any():
        return skip("zero_depth", root / depth_path)
    frame = Frame(
        scene=scene, frame=frame_id, color_path=color_path, depth_path=depth_path, pose=pose,
        color_intrinsics=color_intrinsics, color_size=(color.shape[1], color.shape[0]),
        depth_intrinsics=depth_intrinsics, depth_size=(depth.shape[1], depth.shape[0]), depth_scale=depth_scale,
    )
    return frame, ""


# Scene reader (io/dataset_reader.py): the scenes stage's `source: scannet`.
ROOT_FOLDER = "the directory of exported scenes"
FRAMES = True
CLASS_NAMES = SCANNET20_CLASS_NAMES


def scene_folders(params: SceneSourceParams) -> dict[str, Path]:
    """The root's scenes (or the `scenes` param's subset), each in its own folder."""
    return {name: Path(name) for name in params.scenes or list_scenes(params.root)}


def scene_splits(params: SceneSourceParams, scenes: list[str], warn: bool) -> dict[str, str]:
    if warn and params.val_scenes is None and params.split_files is None:
        log.warning("no split_files: a random split of the rooms (val_fraction %s), not ScanNet's official one", params.val_fraction)
    return params_split(scenes, params, warn)


def split_remedy(stage: str, params: SceneSourceParams) -> str:
    return f"set {stage}.val_scenes or {stage}.val_fraction (all scans of a room go to one side), or {stage}.split_files"


def read_source_scene(params: SceneSourceParams, scene: SceneRef) -> ReadScene:
    """A scene's usable frames (every `frame_step`-th) and its scan, both moved by its axisAlignment when
    `axis_align` is on."""
    scene_frames = read_scene_frames(scene.root, scene.name, params.depth_scale, params.frame_step)
    (points, unlabelled), frames = read_scan_counting(scene.root / scene.folder), scene_frames.frames
    if params.axis_align:
        points, frames = aligned(points, frames, read_axis_alignment(scene.root / scene.folder))
    return ReadScene(points, frames, scene_frames.skipped, unlabelled)
