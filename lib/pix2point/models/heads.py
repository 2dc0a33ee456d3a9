"""Per-voxel heads for a sparse backbone: kept outside it so backbone weights move between tasks."""

from __future__ import annotations

import MinkowskiEngine as ME
import torch.nn.functional as F
from torch import nn


class ProjectionHead(nn.Module):
    """Linear map to the contrastive embedding space, then unit L2 norm per voxel (SLidR's `final` + normalise)."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.linear = ME.MinkowskiLinear(in_channels, dim, bias=True)

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        out = self.linear(x)
        return ME.SparseTensor(F.normalize(out.F, p=2, dim=1), coordinate_map_key=out.coordinate_map_key,
                               coordinate_manager=out.coordinate_manager)


class SegmentationHead(nn.Module):
    """Per-voxel class logits."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.linear = ME.MinkowskiLinear(in_channels, num_classes, bias=True)

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        return self.linear(x)
