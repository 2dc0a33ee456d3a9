"""Proposals -> scored boxes, as VoteNet evaluates (eval.py's config: 3D NMS within a class at IoU 0.25,
per-class proposals, objectness above 0.05; models/ap_helper.py parse_predictions)."""

from __future__ import annotations

import numpy as np
import torch

from pix2point.geometry.boxes import Detections, box_iou

NMS_IOU = 0.25
CONFIDENCE_THRESHOLD = 0.05


def nms_same_class(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> np.ndarray:
    """Greedy 3D NMS: indices kept, best first; a box is dropped by a better one of its class overlapping > iou."""
    order = np.argsort(-scores, kind="stable")
    overlaps = box_iou(boxes, boxes)
    suppressed = np.zeros(len(boxes), bool)
    kept = []
    for index in order:
        if suppressed[index]:
            continue
        kept.append(index)
        suppressed |= (overlaps[index] > iou) & (classes == classes[index])
    return np.asarray(kept, np.int64)


def scene_detections(boxes: torch.Tensor, objectness: torch.Tensor, class_logits: torch.Tensor) -> Detections:
    """One scene's proposals ([P, 6] boxes, [P, 2] objectness and [P, K] class logits) -> detections.

    Each proposal surviving NMS among its predicted class is reported once per class, scored
    objectness x class probability (VoteNet's per_class_proposal). The tensors may be on any device; the
    detections are NumPy arrays.
    """
    object_prob = torch.softmax(objectness, 1)[:, 1].cpu().numpy()
    class_prob = torch.softmax(class_logits, 1).cpu().numpy()
    boxes = boxes.cpu().numpy()
    kept = nms_same_class(boxes, object_prob, class_prob.argmax(1), NMS_IOU)
    kept = kept[object_prob[kept] > CONFIDENCE_THRESHOLD]
    num_classes = class_prob.shape[1]
    return Detections(boxes=np.repeat(boxes[kept], num_classes, axis=0),
                      classes=np.tile(np.arange(num_classes), len(kept)),
                      scores=(object_prob[kept, None] * class_prob[kept]).ravel())
