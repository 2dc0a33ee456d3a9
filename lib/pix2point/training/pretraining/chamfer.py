"""Chamfer distance (L2 variant) between batches of small point sets, as Point-MAE's ChamferDistanceL2."""

from __future__ import annotations

import torch


def chamfer_l2(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[L, P, 3] and [L, Q, 3] -> scalar: the mean over all sets and points of the squared distance from each
    predicted point to its nearest target point, plus the same from target to predicted."""
    # Sets are small (a token's 8-32 points): the plain difference is cheap, and squaring it directly keeps the
    # gradient finite where a predicted point lands exactly on a target (cdist's sqrt would not).
    squared = (predicted[:, :, None] - target[:, None]).square().sum(-1)
    return squared.min(dim=2).values.mean() + squared.min(dim=1).values.mean()
