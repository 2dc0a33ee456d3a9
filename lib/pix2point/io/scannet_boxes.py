"""Object instances and their axis-aligned boxes from ScanNet's annotation files, in VoteNet's 18 classes.

    <scene>/<scene>_vh_clean_2.0.010000.segs.json   {"segIndices": [segment id of every scan vertex]}
    <scene>/<scene>.aggregation.json                {"segGroups": [{"objectId", "label", "segments": [...]}]}
    <scene>/<scene>_vh_clean_2.labels.ply           the scan's vertices with their NYU40 `label`

An instance is the vertices of one segGroup's segments; its box is their min/max per axis and its class
the most common NYU40 label among them (VoteNet's scannet/load_scannet_data.py takes the segGroup's raw
label through scannetv2-labels.combined.tsv, which a user's export may not have; labels.ply was written
through that same mapping). Only instances of VoteNet's 18 detection classes (scannet/model_util_scannet.py)
are kept. A vertex listed by several segGroups belongs to the last one (in objectId order), and a segGroup
left without vertices has no instance, as in load_scannet_data.py: scene0217_00, of ScanNet's val split,
lists every object twice under new objectIds (ScanNet/ScanNet#51), and the first copies are left out.
Objects left out for a fault of the data are counted per reason (SceneBoxes.dropped, DROP_REASONS) and
logged with the file. Boxes are in the frame of the `xyz` given: the `scenes` stage's points, which it moves
by ScanNet's axisAlignment (<scene>.txt) unless `axis_align` is off, as VoteNet does before taking boxes.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pix2point.io.scannet import NYU40_MAX_ID, SceneReadError, _read_ply_vertices

log = logging.getLogger(__name__)

# VoteNet's ScanNet detection classes and their NYU40 ids (models/model_util_scannet.py: nyu40ids).
SCANNET18_NYU40_IDS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
SCANNET18_CLASS_NAMES = (
    "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture", "counter", "desk",
    "curtain", "refrigerator", "showercurtain", "toilet", "sink", "bathtub", "garbagebin",
)
NO_INSTANCE = -1
# Why an object of aggregation.json has no box: its vertices all belong to a later segGroup (or it lists none),
# or its majority label is no NYU40 id (ScanNet/ScanNet#86: id 50). Objects of other NYU40 classes than the
# 18 are not counted: leaving them out is the benchmark's definition, not a fault of the data.
DROP_REASONS = ("no_vertices", "unknown_nyu40_id")


@dataclass(frozen=True)
class SceneBoxes:
    """The detection ground truth of one scene."""

    instance: np.ndarray  # [N] int32: row in `boxes` of each scan vertex's instance, NO_INSTANCE if none kept
    boxes: np.ndarray  # [K, 6] float32 metres: (xmin, ymin, zmin, xmax, ymax, zmax)
    classes: np.ndarray  # [K] int64: index into SCANNET18_CLASS_NAMES
    annotated: bool  # False: the scene has no annotation files (then K == 0)
    dropped: Counter = field(default_factory=Counter)  # reason (DROP_REASONS) -> objects left out

    @property
    def centres(self) -> np.ndarray:
        return (self.boxes[:, :3] + self.boxes[:, 3:]) / 2


def annotation_paths(scene_dir: Path) -> tuple[Path, Path, Path]:
    """(segs.json, aggregation.json, labels.ply) of a scene directory named after its scene."""
    scene = scene_dir.name
    return (scene_dir / f"{scene}_vh_clean_2.0.010000.segs.json", scene_dir / f"{scene}.aggregation.json",
            scene_dir / f"{scene}_vh_clean_2.labels.ply")


def read_scene_boxes(scene_dir: Path, xyz: np.ndarray) -> SceneBoxes:
    """Instances and boxes of one scene, given its scan vertices `xyz` [N, 3] (metres, the scan's order).

    No segs.json and no aggregation.json: the scene is unannotated (logged; no boxes). One of the three
    files missing while another is present, unreadable JSON, a segment or vertex count that disagrees
    with the scan, or a segGroup naming a segment absent from segs.json: SceneReadError naming the file.
    """
    segs_path, aggregation_path, labels_path = annotation_paths(scene_dir)
    num_vertices = len(xyz)
    if not segs_path.is_file() and not aggregation_path.is_file():
        log.warning("%s has no annotation files (%s, %s): no boxes", scene_dir.name, segs_path.name, aggregation_path.name)
        return SceneBoxes(np.full(num_vertices, NO_INSTANCE, np.int32), np.zeros((0, 6), np.float32),
                          np.zeros(0, np.int64), annotated=False)
    segments = _read_segments(segs_path, num_vertices)
    groups = _read_groups(aggregation_path)
    nyu40 = np.asarray(_read_ply_vertices(labels_path, ("label",))["label"], np.int64)
    if len(nyu40) != num_vertices:
        raise SceneReadError(f"{labels_path}: {len(nyu40)} labelled vertices but the scan has {num_vertices}")
    return _boxes_from_groups(xyz, segments, groups, nyu40, aggregation_path)


def _load_json(path: Path, key: str) -> list:
    if not path.is_file():
        raise SceneReadError(f"missing annotation file: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SceneReadError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise SceneReadError(f"{path}: expected an object with a list `{key}`")
    return data[key]


def _read_segments(path: Path, num_vertices: int) -> np.ndarray:
    indices = _load_json(path, "segIndices")
    try:
        segments = np.asarray(indices, np.int64)
    except (TypeError, ValueError) as error:
        raise SceneReadError(f"{path}: segIndices must be integers ({error})") from error
    if segments.ndim != 1 or len(segments) != num_vertices:
        raise SceneReadError(f"{path}: {segments.size} segment indices but the scan has {num_vertices} vertices")
    return segments


@dataclass(frozen=True)
class _Group:
    object_id: int
    segments: tuple[int, ...]


def _read_groups(path: Path) -> list[_Group]:
    groups = []
    for index, group in enumerate(_load_json(path, "segGroups")):
        try:
            groups.append(_Group(int(group["objectId"]), tuple(int(s) for s in group["segments"])))
        except (KeyError, TypeError, ValueError) as error:
            raise SceneReadError(f"{path}: segGroups[{index}] needs an integer objectId and a list of "
                                 f"integer segments ({type(error).__name__}: {error})") from error
    ids = [group.object_id for group in groups]
    if len(set(ids)) != len(ids):
        raise SceneReadError(f"{path}: objectIds repeat: {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    return groups


def _boxes_from_groups(xyz: np.ndarray, segments: np.ndarray, groups: list[_Group], nyu40: np.ndarray,
                       aggregation_path: Path) -> SceneBoxes:
    lookup = dict(zip(SCANNET18_NYU40_IDS, range(len(SCANNET18_NYU40_IDS))))
    groups = sorted(groups, key=lambda g: g.object_id)
    owner = _vertex_owners(segments, groups, aggregation_path)
    instance = np.full(len(segments), NO_INSTANCE, np.int32)
    classes, dropped = [], Counter()
    for index in range(len(groups)):
        members = np.flatnonzero(owner == index)
        if len(members) == 0:
            dropped["no_vertices"] += 1
            continue
        label = int(np.bincount(np.clip(nyu40[members], 0, None)).argmax())
        if label > NYU40_MAX_ID:
            dropped["unknown_nyu40_id"] += 1
            continue
        if label not in lookup:
            continue
        instance[members] = len(classes)
        classes.append(lookup[label])
    if dropped:
        log.warning("%s: %d of its %d objects left out (%s)", aggregation_path, sum(dropped.values()), len(groups),
                    ", ".join(f"{reason}: {count}" for reason, count in sorted(dropped.items())))
    return SceneBoxes(instance, instance_boxes(xyz, instance, len(classes)), np.asarray(classes, np.int64),
                      annotated=True, dropped=dropped)


def _vertex_owners(segments: np.ndarray, groups: list[_Group], aggregation_path: Path) -> np.ndarray:
    """[N] int64: index in `groups` of the last group listing each vertex's segment, -1 for none."""
    known_segments = set(np.unique(segments).tolist())
    owner = np.full(len(segments), -1, np.int64)
    for index, group in enumerate(groups):
        unknown = sorted(set(group.segments) - known_segments)
        if unknown:
            raise SceneReadError(f"{aggregation_path}: object {group.object_id} names segments {unknown[:5]} "
                                 f"that the segs file does not have")
        owner[np.isin(segments, group.segments)] = index
    return owner


def instance_boxes(xyz: np.ndarray, instance: np.ndarray, count: int) -> np.ndarray:
    """[count, 6] float32 (min, max) of the points [N, 3] of each instance 0..count-1 (`instance` [N], -1: none).

    ValueError when an instance has no point: its box would be (+inf, -inf), which no detection can match
    and whose centre is NaN in the loss."""
    member = instance >= 0
    points_per_instance = np.bincount(instance[member], minlength=count)[:count]
    if (points_per_instance == 0).any():
        raise ValueError(f"instances {np.flatnonzero(points_per_instance == 0)[:5].tolist()} of {count} have no "
                         f"point: they have no box")
    low, high = np.full((count, 3), np.inf, np.float32), np.full((count, 3), -np.inf, np.float32)
    np.minimum.at(low, instance[member], xyz[member])
    np.maximum.at(high, instance[member], xyz[member])
    return np.concatenate([low, high], axis=1)
