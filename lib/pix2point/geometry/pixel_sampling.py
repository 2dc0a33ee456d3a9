"""Values of low-resolution maps (teacher features, saliency) at full-resolution image pixels.

Sampling the small map at a pixel's normalised coordinate with grid_sample gives the value the map
upsampled to the image size (F.interpolate, same mode and align_corners) has at that pixel, without
building the full-size map. Pixel (u, v) is (column, row); image_size is (width, height).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pix2point.geometry.camera import Interpolation


def normalised_coordinate(index: torch.Tensor, size: int, align_corners: bool) -> torch.Tensor:
    """Pixel index along an axis of `size` pixels -> grid_sample's [-1, 1] coordinate.

    Normalised coordinates do not depend on resolution, so a pixel index normalised against the image
    size addresses the same point of the small map that the upsampling reads.
    """
    if align_corners:
        return index * (2.0 / (size - 1)) - 1.0 if size > 1 else torch.zeros_like(index)
    return (2.0 * index + 1.0) / size - 1.0


def sample_at_pixels(maps: torch.Tensor, u: torch.Tensor, v: torch.Tensor, image_size: tuple[int, int],
                     mode: Interpolation = "bilinear", align_corners: bool = False) -> torch.Tensor:
    """[B, C, h, w] maps and [B, P] pixels of their images -> [B, P, C]: the maps upsampled to image_size
    by F.interpolate(mode, align_corners), read at (u, v)."""
    width, height = image_size
    grid = torch.stack([
        normalised_coordinate(u.to(maps.dtype), width, align_corners),
        normalised_coordinate(v.to(maps.dtype), height, align_corners),
    ], dim=-1).unsqueeze(1)  # [B, 1, P, 2]
    # "border" reproduces interpolate's clamping of source coordinates at the map's edge.
    sampled = F.grid_sample(maps, grid, mode=mode, padding_mode="border", align_corners=align_corners)
    return sampled.squeeze(2).transpose(1, 2)
