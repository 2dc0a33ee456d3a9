"""PPKT's upsampling projection layer (UPL): the trainable map from frozen teacher features to pixel embeddings.

A 1x1 conv C_teacher -> D, bilinear upsampling to the image's pixel grid, then unit L2 norm over channels
(SLidR model/image_model.py, PPKTFeatureExtractor). SLidR upsamples with align_corners=True; the flag is
kept so the geometrically exact half-pixel convention (False) can be chosen instead.

Sizes follow the scenes table: `image_size` is (width, height); pixel (u, v) is (column, row).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pix2point.geometry.pixel_sampling import normalised_coordinate


class UpsamplingProjection(nn.Module):
    def __init__(self, teacher_channels: int, dim: int, align_corners: bool = True) -> None:
        super().__init__()
        self.projection = nn.Conv2d(teacher_channels, dim, kernel_size=1)
        self.align_corners = align_corners

    def forward(self, features: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """[B, C, h, w] teacher features -> [B, D, H, W] unit pixel embeddings, (W, H) = image_size."""
        width, height = image_size
        upsampled = F.interpolate(self.projection(features), size=(height, width), mode="bilinear",
                                  align_corners=self.align_corners)
        return F.normalize(upsampled, p=2, dim=1)

    def project_at_pixels(self, features: torch.Tensor, batch_index: torch.Tensor, u: torch.Tensor,
                          v: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """[N, D] embeddings equal to `self(features, image_size)[batch_index, :, v, u]`, without the full-size map.

        Projecting before sampling is exact because the 1x1 conv and bilinear interpolation are both
        linear with interpolation weights summing to one, and it is cheaper (D < C at h x w cells).
        """
        projected = self.projection(features)
        width, height = image_size
        # The batch becomes the depth axis of one volume, so a single grid_sample serves every image: each
        # point's depth coordinate falls exactly on its own image's slice, leaving no weight on the others.
        volume = projected.permute(1, 0, 2, 3).unsqueeze(0)  # [1, D, B, h, w]
        grid = torch.stack([
            self._normalised(u.to(projected.dtype), width),
            self._normalised(v.to(projected.dtype), height),
            self._normalised(batch_index.to(projected.dtype), features.shape[0]),
        ], dim=-1).view(1, 1, 1, -1, 3)
        # "border" reproduces interpolate's clamping at the image edge under align_corners=False.
        sampled = F.grid_sample(volume, grid, mode="bilinear", padding_mode="border", align_corners=self.align_corners)
        return F.normalize(sampled.view(projected.shape[1], -1).T, p=2, dim=1)

    def _normalised(self, index: torch.Tensor, size: int) -> torch.Tensor:
        return normalised_coordinate(index, size, self.align_corners)
