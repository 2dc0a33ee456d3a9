"""View teachers on real weights: EfficientNet-Lite0 (packaged ImageNet weights) and, where open_clip is
installed, CLIP ViT-B/16 from a weights file the test writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pix2point.geometry.orthographic import project_views
from pix2point.io.images import standardise_images
from pix2point.models.teachers import build_teacher
from pix2point.models.view_teachers import (
    ask_for_attention_weights,
    build_view_teacher,
    sum_to_one_per_image,
    view_teacher_layer,
)
from pix2point.synthetic import objects as synthetic_objects

SIZE = 224


@pytest.fixture(scope="module")
def object_views():
    rng = np.random.default_rng(0)
    clouds = [synthetic_objects.sample_object(c, 1024, rng)[0] for c in synthetic_objects.CLASSES[:8]]
    return project_views(np.stack(clouds).astype(np.float32), SIZE, splat=5)


def _teacher_input(views, mean, std) -> torch.Tensor:
    gray = torch.from_numpy(views.images()).reshape(-1, 1, SIZE, SIZE)
    return standardise_images(gray.repeat(1, 3, 1, 1), mean, std)


@pytest.fixture(scope="module")
def efficientnet_outputs(object_views):
    teacher = build_view_teacher("efficientnet_lite0")
    images = _teacher_input(object_views, teacher.mean, teacher.std)
    with torch.inference_mode():
        return teacher, images, *teacher(images)


def test_cnn_features_are_the_layer_output_and_saliency_a_distribution_over_cells(efficientnet_outputs):
    teacher, images, features, saliency = efficientnet_outputs
    assert (teacher.layer.name, teacher.layer.channels) == ("stage3", 40)
    with torch.inference_mode():
        plain = build_teacher("efficientnet_lite0", "stage3")(images)
    torch.testing.assert_close(features, plain)
    assert features.shape == (24, 40, 28, 28) and saliency.shape == (24, 7, 7)  # saliency from stage7
    flat = saliency.flatten(1)
    assert (flat >= 0).all() and torch.allclose(flat.sum(1), torch.ones(24))


def test_cnn_saliency_is_higher_on_the_object_than_on_the_background(object_views, efficientnet_outputs):
    saliency = efficientnet_outputs[-1]
    upsampled = torch.nn.functional.interpolate(saliency[:, None], size=(SIZE, SIZE), mode="bilinear")[:, 0]
    on_object = torch.from_numpy(object_views.depth_sums.reshape(-1, SIZE, SIZE) != 0)
    higher = [upsampled[i][on_object[i]].mean() > upsampled[i][~on_object[i]].mean() for i in range(len(upsampled))]
    assert sum(higher) >= 0.9 * len(higher)


def test_attention_hook_makes_multihead_attention_return_its_weights() -> None:
    # open_clip's blocks call their nn.MultiheadAttention with need_weights=False; the CLIP teacher's
    # pre-hook turns the weights on. Checked here on torch's own module, as open_clip is not installed.
    attention = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    attention.register_forward_pre_hook(ask_for_attention_weights, with_kwargs=True)
    tokens = torch.randn(3, 5, 8)
    _, weights = attention(tokens, tokens, tokens, need_weights=False)
    assert weights.shape == (3, 5, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))


def test_sum_to_one_per_image_and_an_all_zero_map() -> None:
    maps = torch.stack([torch.arange(4.0).view(2, 2), torch.zeros(2, 2)])
    scaled = sum_to_one_per_image(maps)
    assert scaled[0].flatten().tolist() == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6])
    assert scaled[1].flatten().tolist() == pytest.approx([0.25] * 4)


def test_layer_choices_are_checked_without_weights() -> None:
    assert view_teacher_layer("clip_vit_b16", None).channels == 512
    with pytest.raises(ValueError, match="one layer"):
        view_teacher_layer("clip_vit_b16", "stage3")
    with pytest.raises(ValueError, match="needs teacher_weights"):
        build_view_teacher("clip_vit_b16")


def test_clip_teacher_from_a_weights_file(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    weights = tmp_path / "vit_b16.pt"
    torch.save(open_clip.create_model("ViT-B-16").state_dict(), weights)
    teacher = build_view_teacher("clip_vit_b16", weights_path=weights)
    images = torch.rand(2, 3, SIZE, SIZE)
    with torch.inference_mode():
        features, saliency = teacher(standardise_images(images, teacher.mean, teacher.std))
    assert features.shape == (2, 512, 14, 14) and saliency.shape == (2, 14, 14)
    assert saliency.min() >= 0 and saliency.flatten(1).sum(1).max() <= 1 + 1e-5  # CLS attention, as the reference
