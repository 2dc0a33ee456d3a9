from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pix2point.geometry.pixel_sampling import sample_at_pixels


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_sampling_equals_the_upsampled_map_at_the_pixel(mode: str, align_corners: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    maps = torch.randn(2, 5, 7, 9, generator=generator, dtype=torch.float64)
    width, height = 72, 56
    u = torch.randint(0, width, (2, 200), generator=generator)
    v = torch.randint(0, height, (2, 200), generator=generator)
    u[:, :2], v[:, :2] = torch.tensor([0, width - 1]), torch.tensor([0, height - 1])  # the image's corners
    upsampled = F.interpolate(maps, size=(height, width), mode=mode, align_corners=align_corners)
    expected = torch.stack([upsampled[b, :, v[b], u[b]].T for b in range(2)])
    sampled = sample_at_pixels(maps, u, v, (width, height), mode, align_corners)
    assert sampled.shape == (2, 200, 5)
    torch.testing.assert_close(sampled, expected)


def test_constant_regions_give_their_value_inside() -> None:
    # A 4x4 map of 4 constant 2x2 quadrants, upsampled x8: pixels well inside a quadrant read its value.
    quadrants = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    maps = quadrants.repeat_interleave(2, 0).repeat_interleave(2, 1)[None, None]
    u = torch.tensor([[3, 28, 3, 28]])
    v = torch.tensor([[3, 3, 28, 28]])
    sampled = sample_at_pixels(maps, u, v, (32, 32))
    assert sampled[0, :, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
