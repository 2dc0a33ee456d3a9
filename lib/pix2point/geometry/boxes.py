"""Axis-aligned 3D boxes of a scene: the detections a model predicts and the ground truth it is scored on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Boxes of one scene, predicted (with scores) or ground truth (scores unused)."""

    boxes: np.ndarray  # [D, 6] metres: (xmin, ymin, zmin, xmax, ymax, zmax)
    classes: np.ndarray  # [D] int
    scores: np.ndarray  # [D] float, higher = more confident


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[A, 6] x [B, 6] axis-aligned (min, max) boxes -> [A, B] intersection over union (0 for empty boxes)."""
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None]
    overlap = np.clip(np.minimum(a[..., 3:], b[..., 3:]) - np.maximum(a[..., :3], b[..., :3]), 0, None).prod(-1)
    volume = lambda boxes: np.clip(boxes[..., 3:] - boxes[..., :3], 0, None).prod(-1)  # noqa: E731
    union = volume(a) + volume(b) - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
