"""PointInfoNCE over matched point-pixel pairs (SLidR pretrain/criterion.py, NCELoss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(point_features: torch.Tensor, pixel_features: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean cross-entropy of each point picking its own pixel among all N pixels of the batch.

    Row i of both [N, D] inputs is a matched pair; every other pixel is a negative for point i.
    """
    if point_features.shape != pixel_features.shape:
        raise ValueError(f"point and pixel features must pair up row for row: "
                         f"{tuple(point_features.shape)} vs {tuple(pixel_features.shape)}")
    logits = point_features @ pixel_features.T / temperature
    targets = torch.arange(len(logits), device=logits.device)
    return F.cross_entropy(logits, targets)
