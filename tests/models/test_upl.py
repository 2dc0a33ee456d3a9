import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2point.models.upl import UpsamplingProjection

TEACHER_CHANNELS, DIM = 12, 6


def teacher_features(batch: int, height: int, width: int) -> torch.Tensor:
    return torch.randn(batch, TEACHER_CHANNELS, height, width, generator=torch.Generator().manual_seed(batch))


def test_output_has_the_image_size_and_unit_norm_per_pixel():
    torch.manual_seed(0)
    pixels = UpsamplingProjection(TEACHER_CHANNELS, DIM)(teacher_features(2, 3, 4), image_size=(40, 24))
    assert pixels.shape == (2, DIM, 24, 40)
    assert torch.allclose(pixels.norm(dim=1), torch.ones(2, 24, 40), atol=1e-5)


def test_upsampling_by_the_stride_matches_slidrs_ppkt_decoder():
    torch.manual_seed(0)
    upl = UpsamplingProjection(TEACHER_CHANNELS, DIM)
    features = teacher_features(2, 3, 4)
    slidr_decoder = nn.Sequential(upl.projection, nn.Upsample(scale_factor=32, mode="bilinear", align_corners=True))
    expected = F.normalize(slidr_decoder(features), p=2, dim=1)
    assert torch.allclose(upl(features, image_size=(4 * 32, 3 * 32)), expected, atol=1e-6)


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("batch", [1, 3])
def test_projecting_at_pixels_equals_upsampling_then_indexing(align_corners, batch):
    torch.manual_seed(0)
    upl = UpsamplingProjection(TEACHER_CHANNELS, DIM, align_corners=align_corners)
    features = teacher_features(batch, 5, 4)
    width, height = 37, 29  # not a multiple of the feature map: the two paths must agree on the scale too
    count = 200
    generator = torch.Generator().manual_seed(1)
    batch_index = torch.randint(0, batch, (count,), generator=generator)
    u = torch.randint(0, width, (count,), generator=generator)
    v = torch.randint(0, height, (count,), generator=generator)
    # Image corners, where the conventions differ most (clamping under align_corners=False).
    u[:4], v[:4] = torch.tensor([0, width - 1, 0, width - 1]), torch.tensor([0, 0, height - 1, height - 1])

    sampled = upl.project_at_pixels(features, batch_index, u, v, image_size=(width, height))
    indexed = upl(features, image_size=(width, height))[batch_index, :, v, u]

    assert sampled.shape == (count, DIM)
    assert torch.allclose(sampled, indexed, atol=1e-5)


def test_projecting_at_pixels_trains_the_projection_like_the_full_map():
    torch.manual_seed(0)
    upl = UpsamplingProjection(TEACHER_CHANNELS, DIM)
    features = teacher_features(2, 3, 4)
    batch_index, u, v = torch.tensor([0, 1, 1]), torch.tensor([0, 17, 40]), torch.tensor([5, 30, 2])
    target = torch.randn(3, DIM, generator=torch.Generator().manual_seed(2))

    (upl.project_at_pixels(features, batch_index, u, v, image_size=(48, 36)) * target).sum().backward()
    sampled_grad = upl.projection.weight.grad.clone()
    upl.zero_grad()
    (upl(features, image_size=(48, 36))[batch_index, :, v, u] * target).sum().backward()

    assert sampled_grad.abs().sum() > 0
    assert torch.allclose(sampled_grad, upl.projection.weight.grad, atol=1e-5)
