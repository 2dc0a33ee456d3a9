"""Object-classification data: few-shot training subsets, Image2Point's augmentation, sparse batches.

Objects come from the `objects` artefact (io/objects_table.py): normalised into the unit sphere, so the
augmentation's translation and the voxel size are in units of the object's radius.
"""

from __future__ import annotations

from dataclasses import dataclass

import MinkowskiEngine as ME
import numpy as np
import torch

from pix2point.training.runtime.device import to_device
from pix2point.models.voxelize import Rounding, collate_sparse, voxelize


@dataclass(frozen=True)
class ObjectAugmentation:
    """Image2Point's ModelNet40 augmentation (core/datasets/modelnet.py, CoordinateTransformation(trans=0.2)):
    each step applied with its own probability."""

    scale_range: tuple[float, float] = (0.9, 1.1)  # per axis
    scale_probability: float = 0.9
    translate: float = 0.2  # uniform in [-t, t] per axis
    translate_probability: float = 0.9
    jitter: float = 0.0125  # uniform in [-j, j] per point and axis (the reference: 0.025 * (rand - 0.5))
    jitter_probability: float = 0.7


def augment_object(points: np.ndarray, rng: np.random.Generator, augmentation: ObjectAugmentation) -> np.ndarray:
    """[N, 3] points of one object, scaled, shifted and jittered, each with its probability (a new array)."""
    out = np.array(points, np.float64)
    if rng.random() < augmentation.scale_probability:
        out *= rng.uniform(*augmentation.scale_range, size=3)
    if rng.random() < augmentation.translate_probability:
        out += rng.uniform(-augmentation.translate, augmentation.translate, size=3)
    if rng.random() < augmentation.jitter_probability:
        out += rng.uniform(-augmentation.jitter, augmentation.jitter, size=out.shape)
    return out.astype(np.float32)


def few_shot_indices(labels: np.ndarray, shots: int | None, seed: int) -> np.ndarray:
    """Sorted indices of `shots` objects per class drawn without replacement (all of them for None).

    A class with fewer than `shots` objects is an error: the run would not be the few-shot setting it names.
    """
    if shots is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < shots:
            raise ValueError(f"class {label} has {len(members)} training objects, fewer than shots={shots}")
        chosen.append(rng.choice(members, size=shots, replace=False))
    return np.sort(np.concatenate(chosen))


def epoch_order(count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """`samples` indices into a set of `count` objects: whole shuffled passes, the last one cut short.

    Every run draws the same number of samples per epoch whatever its training-set size, so a few-shot run
    sees its objects many times instead of training for fewer steps.
    """
    passes = -(-samples // count)
    return np.concatenate([rng.permutation(count) for _ in range(passes)])[:samples]


def object_batch(points: list[np.ndarray], voxel_size: float, rounding: Rounding = "round",
                 device: torch.device = torch.device("cpu")) -> ME.SparseTensor:
    """One sparse tensor of the objects (batch index b = object b) on `device`, each voxel's features the xyz
    of a point in it; voxel coordinates rounded (Image2Point's np.round(xyz / voxel_size)) or floored.
    Voxelised on the CPU; the collated coordinates and features move to `device` in one go."""
    samples = []
    for object_points in points:
        xyz = torch.from_numpy(np.array(object_points, np.float32))  # a copy: Arrow-backed arrays are read-only
        voxels = voxelize(xyz, voxel_size, rounding)
        samples.append((voxels, voxels.voxel_features(xyz)))
    return to_device(collate_sparse(samples), device).sparse_tensor()
