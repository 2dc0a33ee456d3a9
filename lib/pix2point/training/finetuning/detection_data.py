"""Detection data: the scenes artefact's scans with their annotated boxes, augmented and batched with seeds.

Boxes come from the annotation files next to each scan in the scenes artefact's data root (the user's
ScanNet export, or the synthetic tree the scenes stage wrote); see pix2point.io.scannet_boxes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pix2point.io.scannet_boxes import SceneBoxes, instance_boxes, read_scene_boxes
from pix2point.io.scenes_table import ScenePoints, data_root, read_points
from pix2point.models.backbone import BackboneSpec, point_input_features
from pix2point.models.votenet import Seeds
from pix2point.training.augment import rotation_about_z
from pix2point.training.finetuning.detection_loss import SceneTargets
from pix2point.models.voxelize import SparseBatch, collate_sparse, voxelize

log = logging.getLogger(__name__)

MAX_ROTATION = np.pi / 36  # VoteNet's ScanNet augmentation: rotation about z within +-5 degrees, and flips


@dataclass(frozen=True)
class DetectionScene:
    name: str
    points: ScenePoints
    boxes: SceneBoxes


def load_detection_scenes(scenes_dir: Path, names: list[str]) -> list[DetectionScene]:
    """The named scenes with their boxes; scenes without annotation files are left out (logged). Objects the
    box reader left out are in each scene's `boxes.dropped` (see `left_out_objects`)."""
    root = data_root(scenes_dir)
    scenes = []
    for name in names:
        points = read_points(scenes_dir, name)
        boxes = read_scene_boxes(root / name, points.xyz)
        if boxes.annotated:
            scenes.append(DetectionScene(name, points, boxes))
    if len(scenes) < len(names):
        log.warning("%d of %d scenes have no box annotations and are left out", len(names) - len(scenes), len(names))
    return scenes


def left_out_objects(scenes: list[DetectionScene]) -> dict[str, dict[str, int]]:
    """Scene -> {reason: objects of its aggregation.json without a box} (io/scannet_boxes.py DROP_REASONS), for
    the scenes that left any out."""
    return {scene.name: dict(scene.boxes.dropped) for scene in scenes if scene.boxes.dropped}


def augment_scene(scene: DetectionScene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(xyz [N, 3], boxes [K, 6]) after random x/y flips and a small rotation about z; each box is
    recomputed from its instance's moved points, so it stays the tight axis-aligned box."""
    xyz = scene.points.xyz.copy()
    for axis in (0, 1):
        if rng.random() < 0.5:
            xyz[:, axis] = -xyz[:, axis]
    xyz = xyz @ rotation_about_z(rng.uniform(-MAX_ROTATION, MAX_ROTATION)).T
    return xyz, instance_boxes(xyz, scene.boxes.instance, len(scene.boxes.classes))


def detection_batch(scenes: list[DetectionScene], spec: BackboneSpec, num_seeds: int, rng: np.random.Generator,
                    augment: bool) -> tuple[SparseBatch, Seeds, list[SceneTargets]]:
    """Collated scenes, `num_seeds` random scan points of each (with repeats in a smaller scan), their targets."""
    samples, sample, point, xyz_seeds, targets = [], [], [], [], []
    for b, scene in enumerate(scenes):
        xyz, boxes = augment_scene(scene, rng) if augment else (scene.points.xyz, scene.boxes.boxes)
        voxels = voxelize(torch.from_numpy(np.ascontiguousarray(xyz, np.float32)), spec.voxel_size)
        samples.append((voxels, voxels.voxel_features(point_input_features(scene.points.rgb, spec.input_features))))
        chosen = rng.choice(len(xyz), num_seeds, replace=len(xyz) < num_seeds)
        sample.append(np.full(num_seeds, b))
        point.append(chosen)
        xyz_seeds.append(xyz[chosen])
        targets.append(SceneTargets(torch.from_numpy(scene.boxes.instance[chosen].astype(np.int64)),
                                    torch.from_numpy(np.asarray(boxes, np.float32)),
                                    torch.from_numpy(scene.boxes.classes)))
    seeds = Seeds(torch.from_numpy(np.concatenate(sample)).long(), torch.from_numpy(np.concatenate(point)).long(),
                  torch.from_numpy(np.concatenate(xyz_seeds).astype(np.float32)))
    return collate_sparse(samples), seeds, targets


def batch_to(device: torch.device, batch: SparseBatch, seeds: Seeds, targets: list[SceneTargets]
             ) -> tuple[SparseBatch, Seeds, list[SceneTargets]]:
    """`detection_batch`'s output with every tensor on `device`: a step moves its batch once, to its model's."""
    return batch.to(device), seeds.to(device), [target.to(device) for target in targets]
