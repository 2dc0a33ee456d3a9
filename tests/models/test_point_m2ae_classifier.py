"""The fine-tuning classifier: head and loss shapes, I2P-MAE's label smoothing, local attention, strict loading
of a pretrained encoder."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from pix2point.models.point_m2ae import HierarchicalEncoder, PointM2AESpec, save_encoder
from pix2point.models.point_m2ae_classifier import (
    PointM2AEClassifier,
    load_pretrained_encoder,
    smoothed_cross_entropy,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def clouds(batch: int = 4, points: int = 128) -> torch.Tensor:
    return torch.randn(batch, points, 3, generator=torch.Generator().manual_seed(0)) * 0.4


@pytest.mark.parametrize(("pooling", "width"), [("concat", 2 * 96), ("sum", 96)])
def test_logits_per_cloud_and_the_head_takes_the_pooled_width(pooling, width, encoder_spec):
    model = PointM2AEClassifier(encoder_spec, num_classes=5, pooling=pooling, local_radius=(0.5, 1.0, 2.0)).eval()
    assert model.head[0].in_features == width
    assert [type(layer).__name__ for layer in model.head] == [
        "Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    logits = model(clouds())
    assert logits.shape == (4, 5) and logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_concat_pooling_is_mean_then_max_of_the_coarsest_tokens(encoder_spec):
    model = PointM2AEClassifier(encoder_spec, num_classes=3, local_radius=None).eval()
    captured = {}
    model.head.register_forward_pre_hook(lambda _, args: captured.update(pooled=args[0]))
    points = clouds()
    model(points)
    tokens = model.encoder(model.encoder.group(points))[-1].tokens
    assert torch.allclose(captured["pooled"], torch.cat([tokens.mean(1), tokens.max(1).values], 1))


def test_label_smoothing_is_the_references_smooth_loss_and_zero_is_cross_entropy():
    logits, labels = torch.randn(6, 5, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2, 3, 4, 0])
    eps = 0.2
    one_hot = F.one_hot(labels, 5).float()
    target = one_hot * (1 - eps) + (1 - one_hot) * eps / 4  # I2P_MAE_ModelNet40.smooth_loss
    expected = -(target * F.log_softmax(logits, 1)).sum(1).mean()
    assert torch.allclose(smoothed_cross_entropy(logits, labels, eps), expected)
    assert torch.allclose(smoothed_cross_entropy(logits, labels, 0.0), F.cross_entropy(logits, labels))
    with pytest.raises(ValueError, match="label smoothing 0.9"):
        smoothed_cross_entropy(logits, labels, 0.9)


def test_local_attention_changes_the_tokens_and_a_radius_past_the_cloud_is_global(encoder_spec):
    encoder = HierarchicalEncoder(encoder_spec).eval()
    points = clouds()
    hierarchy = encoder.group(points)
    everywhere = encoder(hierarchy)[-1].tokens
    assert torch.allclose(encoder(hierarchy, local_radius=(100.0, 100.0, 100.0))[-1].tokens, everywhere, atol=1e-5)
    assert not torch.allclose(encoder(hierarchy, local_radius=(0.2, 0.4, 0.8))[-1].tokens, everywhere, atol=1e-3)
    with pytest.raises(ValueError, match="one entry per scale"):
        encoder(hierarchy, local_radius=(0.2, 0.4))


def pretrained(directory, spec: PointM2AESpec) -> HierarchicalEncoder:
    torch.manual_seed(7)
    encoder = HierarchicalEncoder(spec)
    save_encoder(directory, encoder)
    return encoder


def test_a_pretrained_encoder_loads_whole_whatever_the_fine_tuning_group_sizes(tmp_path, encoder_spec):
    encoder = pretrained(tmp_path, encoder_spec)
    model = PointM2AEClassifier(PointM2AESpec(encoder_spec.num_groups, (16, 8, 8), *list(vars(encoder_spec).values())[2:]), 4)
    load_pretrained_encoder(model, tmp_path)
    loaded = model.encoder.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in encoder.state_dict().items())


def test_a_missing_or_misshapen_tensor_is_an_error_naming_it_and_the_file(tmp_path, encoder_spec):
    pretrained(tmp_path, encoder_spec)
    state = torch.load(tmp_path / "encoder.pt", weights_only=True)
    del state["norms.2.weight"]
    state["stacks.0.blocks.0.mlp.0.bias"] = torch.zeros(5)
    torch.save(state, tmp_path / "encoder.pt")
    with pytest.raises(ValueError) as error:
        load_pretrained_encoder(PointM2AEClassifier(encoder_spec, 4), tmp_path)
    message = str(error.value)
    assert str(tmp_path / "encoder.pt") in message
    assert "missing keys [norms.2.weight]" in message and "misshapen keys [stacks.0.blocks.0.mlp.0.bias" in message


def test_an_encoder_of_another_spec_is_an_error_naming_its_spec_file(tmp_path, encoder_spec):
    pretrained(tmp_path, PointM2AESpec(encoder_spec.num_groups, encoder_spec.group_sizes, (24, 48, 48), (1, 1, 1), 3, (16, 32, 64)))
    with pytest.raises(ValueError, match="encoder.json: pretrained encoder"):
        load_pretrained_encoder(PointM2AEClassifier(encoder_spec, 4), tmp_path)
    (tmp_path / "encoder.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "encoder.json").write_text(json.dumps(vars(encoder_spec)))
    with pytest.raises(ValueError, match="not readable"):
        load_pretrained_encoder(PointM2AEClassifier(encoder_spec, 4), tmp_path)
