"""Files of one exported ScanNet scene, in ScanNet's own formats and names.

    <scene>/color/<i>.jpg                 RGB frame
    <scene>/depth/<i>.png                 uint16, metres * depth_scale, 0 = no measurement
    <scene>/pose/<i>.txt                  4x4 camera-to-world
    <scene>/intrinsic/intrinsic_{color,depth}.txt   4x4, K in the top-left 3x3
    <scene>/<scene>_vh_clean_2.ply        scan vertices with their colours
    <scene>/<scene>_vh_clean_2.labels.ply the same vertices with NYU40 labels (colours: the label palette)
    <scene>/<scene>_vh_clean_2.0.010000.segs.json   segment id of every scan vertex
    <scene>/<scene>.aggregation.json      object instances: groups of segments with a label
    <scene>/<scene>.txt                   scene metadata: axisAlignment (scan frame -> room frame)
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from plyfile import PlyData, PlyElement

JPEG_QUALITY = 95
MAX_DEPTH_VALUE = np.iinfo(np.uint16).max


def _write_image(path: Path, image: np.ndarray, params: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image, params):
        raise OSError(f"could not write image {path}")


def write_color(scene_dir: Path, frame: int, rgb: np.ndarray) -> None:
    _write_image(scene_dir / "color" / f"{frame}.jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])


def write_depth(scene_dir: Path, frame: int, depth_m: np.ndarray, depth_scale: float) -> None:
    values = np.clip(np.round(depth_m * depth_scale), 0, MAX_DEPTH_VALUE).astype(np.uint16)
    _write_image(scene_dir / "depth" / f"{frame}.png", values, [])


def write_matrix(path: Path, matrix: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, matrix, fmt="%.9f")


def write_pose(scene_dir: Path, frame: int, camera_to_world: np.ndarray) -> None:
    write_matrix(scene_dir / "pose" / f"{frame}.txt", camera_to_world)


def write_intrinsics(scene_dir: Path, color_intrinsics: np.ndarray, depth_intrinsics: np.ndarray) -> None:
    for name, intrinsics in (("color", color_intrinsics), ("depth", depth_intrinsics)):
        padded = np.eye(4)
        padded[:3, :3] = intrinsics
        write_matrix(scene_dir / "intrinsic" / f"intrinsic_{name}.txt", padded)


def _vertices(xyz: np.ndarray, rgb: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("alpha", "u1")]
    if labels is not None:
        fields.append(("label", "<u2"))
    vertices = np.empty(len(xyz), dtype=fields)
    vertices["x"], vertices["y"], vertices["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    vertices["red"], vertices["green"], vertices["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    vertices["alpha"] = 255
    if labels is not None:
        vertices["label"] = labels
    return vertices


def write_scan(scene_dir: Path, scene: str, xyz: np.ndarray, rgb: np.ndarray, labels: np.ndarray, label_rgb: np.ndarray) -> None:
    """Both scan PLYs (binary little-endian, vertices only): colours in one, labels in the other."""
    for suffix, vertices in (
        ("_vh_clean_2.ply", _vertices(xyz, rgb, None)),
        ("_vh_clean_2.labels.ply", _vertices(xyz, label_rgb, labels)),
    ):
        PlyData([PlyElement.describe(vertices, "vertex")], text=False, byte_order="<").write(str(scene_dir / f"{scene}{suffix}"))


def write_annotations(scene_dir: Path, scene: str, segment: np.ndarray, objects: list[tuple[str, list[int]]]) -> None:
    """ScanNet's instance annotation: per-vertex segment ids [N] and objects (label, segment ids), id = position."""
    segs_name = f"{scene}_vh_clean_2.0.010000.segs.json"
    (scene_dir / segs_name).write_text(json.dumps({"sceneId": scene, "segIndices": segment.astype(int).tolist()}))
    groups = [{"id": i, "objectId": i, "segments": segments, "label": label} for i, (label, segments) in enumerate(objects)]
    (scene_dir / f"{scene}.aggregation.json").write_text(json.dumps(
        {"sceneId": f"scannet.{scene}", "segmentsFile": f"scannet.{segs_name}", "segGroups": groups}))


def write_axis_alignment(scene_dir: Path, scene: str, alignment: np.ndarray) -> None:
    """ScanNet's `<scene>.txt` with its axisAlignment line: [4, 4], row-major, scan frame -> aligned frame."""
    values = " ".join(f"{v:.9f}" for v in np.asarray(alignment, np.float64).reshape(16))
    (scene_dir / f"{scene}.txt").write_text(f"axisAlignment = {values}\nsceneType = Synthetic room\n")
