"""Boxes from ScanNet's annotation files: a hand-written scene, damaged files, and the synthetic rooms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from pix2point.evaluation.detection_metrics import detection_scores
from pix2point.geometry.boxes import Detections
from pix2point.io.scannet import SceneReadError
from pix2point.io.scannet import read_axis_alignment
from pix2point.io.scannet_boxes import SCANNET18_CLASS_NAMES, annotation_paths, instance_boxes, read_scene_boxes
from pix2point.synthetic.boxes import rotate_about_z
from pix2point.synthetic.layout import generate_layout
from pix2point.synthetic.scene import SyntheticSceneConfig, write_synthetic_scene

SCENE = "scene0042_00"
# Ten vertices: 0-2 wall (segment 5), 3-5 a chair in two segments (7, 8), 6-8 a table (segment 9), 9 unannotated (11).
XYZ = np.array([
    [0, 0, 0], [0, 3, 0], [0, 3, 2.5],
    [1, 1, 0], [1.5, 1.2, 0.9], [1.2, 1.6, 0.45],
    [3, 2, 0], [4, 2.5, 0.75], [3.5, 3, 0.7],
    [5, 5, 1],
], np.float32)
SEGMENTS = [5, 5, 5, 7, 8, 8, 9, 9, 9, 11]
NYU40 = [1, 1, 1, 5, 5, 5, 7, 7, 7, 0]  # wall, chair, table, unannotated
GROUPS = [
    {"id": 0, "objectId": 0, "label": "wall", "segments": [5]},
    {"id": 1, "objectId": 1, "label": "office chair", "segments": [7, 8]},
    {"id": 2, "objectId": 2, "label": "table", "segments": [9]},
]


def write_scene(root: Path, segments=SEGMENTS, groups=GROUPS, nyu40=NYU40) -> Path:
    scene_dir = root / SCENE
    scene_dir.mkdir()
    segs_path, aggregation_path, labels_path = annotation_paths(scene_dir)
    segs_path.write_text(json.dumps({"sceneId": SCENE, "segIndices": segments}))
    aggregation_path.write_text(json.dumps({"sceneId": f"scannet.{SCENE}", "segGroups": groups}))
    vertices = np.empty(len(nyu40), [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("label", "<u2")])
    vertices["x"], vertices["y"], vertices["z"] = XYZ[: len(nyu40)].T
    vertices["label"] = nyu40
    PlyData([PlyElement.describe(vertices, "vertex")]).write(str(labels_path))
    return scene_dir


def test_boxes_of_a_hand_written_scene(tmp_path):
    result = read_scene_boxes(write_scene(tmp_path), XYZ)
    assert result.annotated
    # The wall is not a detection class; the chair spans its two segments.
    assert [SCANNET18_CLASS_NAMES[c] for c in result.classes] == ["chair", "table"]
    np.testing.assert_allclose(result.boxes, [[1, 1, 0, 1.5, 1.6, 0.9], [3, 2, 0, 4, 3, 0.75]])
    np.testing.assert_allclose(result.centres, [[1.25, 1.3, 0.45], [3.5, 2.5, 0.375]])
    assert result.instance.tolist() == [-1, -1, -1, 0, 0, 0, 1, 1, 1, -1]
    assert result.dropped == {}


def test_scene_without_annotation_files_has_no_boxes_and_says_so(tmp_path, caplog):
    (tmp_path / SCENE).mkdir()
    result = read_scene_boxes(tmp_path / SCENE, XYZ)
    assert not result.annotated and result.boxes.shape == (0, 6) and (result.instance == -1).all()
    assert SCENE in caplog.text and "no annotation files" in caplog.text


@pytest.mark.parametrize("damage, culprit", [
    (lambda paths: paths[1].unlink(), 1),
    (lambda paths: paths[2].unlink(), 2),
    (lambda paths: paths[0].write_text("{not json"), 0),
    (lambda paths: paths[0].write_text(json.dumps({"segIndices": SEGMENTS[:-1]})), 0),
    (lambda paths: paths[1].write_text(json.dumps({"segGroups": [{"objectId": 0, "label": "chair", "segments": [99]}]})), 1),
    (lambda paths: paths[1].write_text(json.dumps({"segGroups": [GROUPS[1], GROUPS[1]]})), 1),
    (lambda paths: paths[1].write_text(json.dumps({"segGroups": [{"label": "chair"}]})), 1),
])
def test_missing_or_inconsistent_file_is_an_error_naming_it(tmp_path, damage, culprit):
    paths = annotation_paths(write_scene(tmp_path))
    damage(paths)
    with pytest.raises(SceneReadError, match=paths[culprit].name):
        read_scene_boxes(tmp_path / SCENE, XYZ)


def test_labels_file_with_another_vertex_count_is_an_error(tmp_path):
    write_scene(tmp_path, nyu40=NYU40[:-1])
    with pytest.raises(SceneReadError, match="labels.ply: 9 labelled vertices but the scan has 10"):
        read_scene_boxes(tmp_path / SCENE, XYZ)


def exact_furniture_boxes(seed: int) -> np.ndarray:
    """[P, 6] axis-aligned boxes of the layout's furniture from the corners of their parts (the generator's rng)."""
    layout = generate_layout(np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[0]))
    owner, furniture = layout.box_owner(), layout.boxes
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
    boxes = []
    for piece in range(len(layout.placements)):
        corners = np.concatenate([
            rotate_about_z(signs * furniture.half_sizes[i], furniture.yaws[i]) + furniture.centres[i]
            for i in np.flatnonzero(owner == piece)])
        boxes.append(np.concatenate([corners.min(0), corners.max(0)]))
    return np.array(boxes)


def test_synthetic_rooms_annotate_each_piece_of_furniture_with_its_exact_box(tmp_path):
    config = SyntheticSceneConfig(frames=1, color_size=(32, 24), depth_size=(32, 24), points=30_000)
    scene_dir = write_synthetic_scene(tmp_path, SCENE, seed=5, config=config)
    vertices = PlyData.read(str(scene_dir / f"{SCENE}_vh_clean_2.ply"))["vertex"].data
    scanned = np.stack([vertices["x"], vertices["y"], vertices["z"]], axis=1)
    alignment = read_axis_alignment(scene_dir)  # the scan is turned, as a ScanNet scan; the scenes stage aligns it
    xyz = (scanned @ alignment[:3, :3].T + alignment[:3, 3]).astype(np.float32)
    result = read_scene_boxes(scene_dir, xyz)
    exact = exact_furniture_boxes(5)
    assert not np.allclose(read_scene_boxes(scene_dir, scanned).boxes, exact, atol=0.06)
    assert len(result.boxes) == len(exact) >= 4
    # Scan points lie on the furniture's surfaces: their box sits inside the exact one and, with 30k
    # points in the room, reaches within a few centimetres of every face.
    assert np.all(result.boxes[:, :3] >= exact[:, :3] - 1e-4) and np.all(result.boxes[:, 3:] <= exact[:, 3:] + 1e-4)
    np.testing.assert_allclose(result.boxes, exact, atol=0.06)
    assert set(result.classes.tolist()) <= {SCANNET18_CLASS_NAMES.index(n) for n in
                                            ("cabinet", "bed", "chair", "sofa", "table", "bookshelf", "desk")}


def listed_twice(groups: list[dict]) -> list[dict]:
    """ScanNet's scene0217_00 (ScanNet/ScanNet#51): every object again under a new objectId, same segments."""
    return groups + [{**group, "id": group["id"] + len(groups), "objectId": group["objectId"] + len(groups)}
                     for group in groups]


def test_objects_listed_twice_keep_one_finite_box_each_and_are_counted(tmp_path, caplog):
    result = read_scene_boxes(write_scene(tmp_path, groups=listed_twice(GROUPS)), XYZ)
    assert [SCANNET18_CLASS_NAMES[c] for c in result.classes] == ["chair", "table"]
    assert np.isfinite(result.boxes).all()
    np.testing.assert_allclose(result.boxes, [[1, 1, 0, 1.5, 1.6, 0.9], [3, 2, 0, 4, 3, 0.75]])
    assert result.instance.tolist() == [-1, -1, -1, 0, 0, 0, 1, 1, 1, -1]
    assert result.dropped == {"no_vertices": 3}  # the first copies: wall, chair, table
    assert f"{SCENE}.aggregation.json: 3 of its 6 objects left out (no_vertices: 3)" in caplog.text
    # A perfect detector scores every class fully: no unmatched (+inf, -inf) box is left in the ground truth.
    truth = Detections(result.boxes, result.classes, np.ones(len(result.classes)))
    scores = detection_scores([truth], [truth], len(SCANNET18_CLASS_NAMES), 0.25)
    assert scores.mean_ap == 1.0 and scores.mean_recall == 1.0


def test_an_object_whose_labels_ply_id_is_outside_nyu40_is_counted_and_logged(tmp_path, caplog):
    nyu40 = [1, 1, 1, 50, 50, 5, 7, 7, 7, 0]  # ScanNet/ScanNet#86: id 50 on most of the chair
    result = read_scene_boxes(write_scene(tmp_path, nyu40=nyu40), XYZ)
    assert [SCANNET18_CLASS_NAMES[c] for c in result.classes] == ["table"]
    assert result.dropped == {"unknown_nyu40_id": 1}
    assert "1 of its 3 objects left out (unknown_nyu40_id: 1)" in caplog.text


def test_an_instance_without_points_has_no_box_but_an_error():
    with pytest.raises(ValueError, match=r"instances \[1\] of 2 have no point"):
        instance_boxes(XYZ, np.array([0, 0, -1, -1, -1, -1, -1, -1, -1, -1]), 2)
