from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from pix2point.models.efficientnet_lite import load_efficientnet_lite0
from pix2point.models.resnet import resnet
from pix2point.models.teachers import build_teacher, teacher_layers

EGYPTIAN_CAT = 285  # ImageNet class index


def normalised(image: np.ndarray, mean, std, size: tuple[int, int]) -> torch.Tensor:
    """Reference preprocessing written out by hand: RGB uint8 -> resized, [1, 3, H, W] normalised float."""
    pixels = cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    pixels = (pixels - np.array(mean, np.float32)) / np.array(std, np.float32)
    return torch.from_numpy(pixels).permute(2, 0, 1)[None]


def random_resnet(name: str) -> torch.nn.Module:
    """A ResNet whose every weight and BatchNorm statistic is random, so a weight that fails to load shows."""
    torch.manual_seed(0)
    model = resnet(name)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    return model.eval()


@pytest.mark.parametrize("layer", ["stage3", "stage5", "stage7", "head"])
def test_efficientnet_layers_have_their_stride_and_channels(layer):
    teacher = build_teacher("efficientnet_lite0", layer)
    spec = teacher_layers("efficientnet_lite0")[layer]
    with torch.inference_mode():
        features = teacher(torch.zeros(2, 3, 64, 96))
    assert (teacher.stride, teacher.channels) == (spec.stride, spec.channels)
    assert features.shape == (2, spec.channels, 64 // spec.stride, 96 // spec.stride)


def test_efficientnet_strides_and_channels_are_the_documented_ones():
    layers = teacher_layers("efficientnet_lite0")
    assert {name: (spec.stride, spec.channels) for name, spec in layers.items()} == {
        "stage3": (8, 40), "stage5": (16, 112), "stage7": (32, 320), "head": (32, 1280),
    }


def test_teacher_stays_frozen_in_eval_mode():
    teacher = build_teacher("efficientnet_lite0", "stage3")
    teacher.train()
    assert not teacher.training and not any(module.training for module in teacher.modules())
    assert not any(parameter.requires_grad for parameter in teacher.parameters())


def test_efficientnet_classifies_the_scikit_image_cat_as_egyptian_cat():
    # Real weights and the right normalisation: the teacher's own mean/std feed the full ImageNet classifier.
    teacher = build_teacher("efficientnet_lite0", "head")
    classifier = load_efficientnet_lite0()
    images = normalised(skimage.data.chelsea(), teacher.mean, teacher.std, (224, 224))
    with torch.inference_mode():
        probabilities = classifier(images).softmax(dim=1)[0]
        head = teacher(images)
        reference_head = classifier.extract_features(images)
    assert int(probabilities.argmax()) == EGYPTIAN_CAT
    assert float(probabilities[EGYPTIAN_CAT]) > 0.5
    torch.testing.assert_close(head, reference_head)  # the truncated teacher is the classifier's own trunk


def test_image_sides_must_be_multiples_of_the_stride():
    teacher = build_teacher("efficientnet_lite0", "stage5")
    with pytest.raises(ValueError, match="multiples of its stride 16"):
        teacher(torch.zeros(1, 3, 64, 72))


def test_unknown_layer_names_the_teacher_layers():
    with pytest.raises(ValueError, match=r"no layer 'layer4'.*stage3 \(stride 8, 40 channels\).*head"):
        build_teacher("efficientnet_lite0", "layer4")


def test_resnet_architecture_matches_torchvision_parameter_counts():
    # torchvision's published sizes: any missing or extra layer would change them.
    assert sum(p.numel() for p in resnet("resnet18").parameters()) == 11_689_512
    assert sum(p.numel() for p in resnet("resnet50").parameters()) == 25_557_032


@pytest.mark.parametrize("name, layer, stride, channels", [
    ("resnet18", "layer2", 8, 128), ("resnet18", "layer3", 16, 256), ("resnet18", "layer4", 32, 512),
    ("resnet50", "layer2", 8, 512), ("resnet50", "layer4", 32, 2048),
])
def test_resnet_loads_a_torchvision_state_dict(tmp_path, name, layer, stride, channels):
    model = random_resnet(name)
    path = tmp_path / f"{name}.pth"
    torch.save(model.state_dict(), path)
    teacher = build_teacher(name, layer, path)
    images = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        features = teacher(images)
        expected = model.trunk(layer)(images)
    assert (teacher.stride, teacher.channels) == (stride, channels)
    assert features.shape == (1, channels, 64 // stride, 96 // stride)
    torch.testing.assert_close(features, expected)


def test_resnet_loads_a_moco_v2_checkpoint(tmp_path):
    model = random_resnet("resnet18")
    encoder = {key: value for key, value in model.state_dict().items() if not key.startswith("fc.")}
    moco_head = {"fc.0.weight": torch.randn(512, 512), "fc.0.bias": torch.randn(512),
                 "fc.2.weight": torch.randn(128, 512), "fc.2.bias": torch.randn(128)}
    state_dict = {f"module.encoder_q.{key}": value for key, value in {**encoder, **moco_head}.items()}
    state_dict |= {f"module.encoder_k.{key}": torch.zeros_like(value) for key, value in encoder.items()}
    state_dict |= {"module.queue": torch.randn(128, 64), "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
    path = tmp_path / "moco_v2.pth.tar"
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": state_dict}, path)
    teacher = build_teacher("resnet18", "layer4", path)
    images = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(teacher(images), model.trunk("layer4")(images))


@pytest.mark.parametrize("damage, message", [
    (lambda state: state.pop("layer1.0.conv1.weight"), r"missing keys \[layer1\.0\.conv1\.weight\]"),
    (lambda state: state.update({"layer5.0.conv1.weight": torch.zeros(1)}), r"unexpected keys \[layer5\.0\.conv1\.weight\]"),
    (lambda state: state.update({"conv1.weight": torch.zeros(64, 3, 3, 3)}),
     r"misshapen keys \[conv1\.weight \(64, 3, 3, 3\) in file vs \(64, 3, 7, 7\) in model\]"),
])
def test_resnet_checkpoint_that_does_not_fit_names_file_and_keys(tmp_path, damage, message):
    state = random_resnet("resnet18").state_dict()
    damage(state)
    path = tmp_path / "damaged.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=rf"{path}.*{message}"):
        build_teacher("resnet18", "layer4", path)


def test_resnet50_file_into_resnet18_is_an_error(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(random_resnet("resnet50").state_dict(), path)
    with pytest.raises(ValueError, match=r"does not fit resnet18: unexpected keys.*misshapen keys"):
        build_teacher("resnet18", "layer4", path)


def test_missing_or_unreadable_weights_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path / 'absent.pth'} does not exist"):
        build_teacher("resnet50", "layer4", tmp_path / "absent.pth")
    not_a_checkpoint = tmp_path / "notes.pth"
    not_a_checkpoint.write_text("not weights")
    with pytest.raises(ValueError, match=f"{not_a_checkpoint} is not a readable torch checkpoint"):
        build_teacher("resnet50", "layer4", not_a_checkpoint)


def test_resnet_without_weights_file_is_an_error():
    with pytest.raises(ValueError, match="resnet50 needs a weights file"):
        build_teacher("resnet50", "layer4")


def test_teacher_holds_only_the_layers_up_to_its_cut():
    # Nothing after the chosen layer is kept, so nothing after it can run.
    sizes = [sum(p.numel() for p in build_teacher("efficientnet_lite0", layer).parameters())
             for layer in ("stage3", "stage5", "stage7", "head")]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4
