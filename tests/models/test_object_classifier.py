"""Building the classify stage's networks: scratch and inflated twins, BatchNorm momentum, missing 2D weights."""

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from pix2point.models.efficientnet_lite import load_efficientnet_lite0
from pix2point.models.object_classifier import ClassifierSpec, build_classifier
from pix2point.training.finetuning.object_data import object_batch


def test_inflated_lite0_carries_the_2d_weights_and_scratch_does_not():
    spec = ClassifierSpec("efficientnet_lite0", num_classes=5)
    inflated, report = build_classifier(spec, "inflated")
    scratch, no_report = build_classifier(spec, "scratch")
    assert no_report is None and len(report.placed) > 200
    head2d = load_efficientnet_lite0()._conv_head.weight  # [1280, 320, 1, 1]
    head3d = inflated.trunk[-1].conv.kernel  # [320, 1280]: MinkowskiEngine keeps (in, out)
    assert torch.equal(head3d, head2d[:, :, 0, 0].T)
    assert not torch.equal(scratch.trunk[-1].conv.kernel, head3d)


def test_batchnorm_momentum_is_set_on_every_batchnorm_only_when_asked():
    kept, _ = build_classifier(ClassifierSpec("efficientnet_lite0", 5), "scratch")
    twin = [kept.stem, kept.trunk]  # the new classifier's BatchNorm1d keeps torch's default, as Image2Point's
    (momentum,) = {module.momentum for part in twin for module in part.modules() if isinstance(module, _BatchNorm)}
    assert momentum == pytest.approx(0.01)  # EfficientNet-Lite0's own (1 - 0.99)
    changed, _ = build_classifier(ClassifierSpec("efficientnet_lite0", 5, batchnorm_momentum=0.1), "scratch")
    assert {module.momentum for module in changed.modules() if isinstance(module, _BatchNorm)} == {0.1}


def test_resnet_twin_from_scratch_classifies_and_inflation_needs_weights():
    model, _ = build_classifier(ClassifierSpec("resnet18", num_classes=3), "scratch")
    model.eval()
    points = [torch.rand(300, 3).numpy() * 2 - 1 for _ in range(2)]
    with torch.inference_mode():
        assert model(object_batch(points, voxel_size=0.1)).shape == (2, 3)
    with pytest.raises(ValueError, match="inflating resnet18 needs its 2D weights"):
        build_classifier(ClassifierSpec("resnet18", num_classes=3), "inflated")


@pytest.mark.parametrize("network", ["efficientnet_lite0", "resnet18"])
def test_stem_is_conv_and_batchnorm_without_activation_and_the_classifier_linear_and_batchnorm1d(network):
    # Image2Point's SPVCNN_cls: stem = Conv3d + BatchNorm, classifier = Linear + BatchNorm1d.
    model, _ = build_classifier(ClassifierSpec(network, num_classes=4), "scratch")
    points = [torch.rand(300, 3).numpy() * 2 - 1 for _ in range(3)]
    with torch.inference_mode():
        stem_out = model.stem(object_batch(points, voxel_size=0.1)).F
    assert stem_out.min() < 0  # no ReLU / ReLU6 after the stem's BatchNorm
    linear, norm = list(model.classifier)[-2:]
    assert isinstance(linear, torch.nn.Linear) and isinstance(norm, torch.nn.BatchNorm1d)
    assert norm.num_features == 4
