"""Finetuning pieces: pretrained weights load (or fail loudly), labels are limited as asked, mIoU is right."""

import numpy as np
import pytest
import torch

from pix2point.models.backbone import BackboneSpec, build_backbone
from pix2point.models.res16unet import Res16UNet, UNetSize
from pix2point.training.segmentation import load_pretrained
from pix2point.training.segmentation_data import limited_labels, split_scenes


def test_pretrained_backbone_weights_load_into_a_fresh_backbone(tmp_path):
    spec = BackboneSpec("tiny", "rgb", 0.05)
    torch.manual_seed(0)
    pretrained = build_backbone(spec)
    torch.save(pretrained.state_dict(), tmp_path / "backbone.pt")
    torch.manual_seed(1)
    fresh = build_backbone(spec)
    assert load_pretrained(fresh, tmp_path / "backbone.pt") == len(pretrained.state_dict())
    for key, value in pretrained.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_weights_of_another_network_are_an_error_naming_the_file(tmp_path):
    other = Res16UNet(7, UNetSize(planes=(8,) * 8, layers=(1,) * 8, init_dim=8))
    torch.save({f"other.{k}": v for k, v in other.state_dict().items()}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"pretrained backbone file .*other.pt does not fit .* missing keys"):
        load_pretrained(build_backbone(BackboneSpec("tiny", "rgb", 0.05)), tmp_path / "other.pt")


def test_a_missing_or_misshapen_tensor_is_an_error_naming_it_not_a_partial_load(tmp_path):
    state = build_backbone(BackboneSpec("tiny", "rgb", 0.05)).state_dict()
    first, second = list(state)[:2]
    torch.save({key: value for key, value in state.items() if key != first}, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match=rf"missing.pt does not fit .*missing keys \[{first}\]"):
        load_pretrained(build_backbone(BackboneSpec("tiny", "rgb", 0.05)), tmp_path / "missing.pt")
    torch.save({**state, second: torch.zeros(3)}, tmp_path / "misshapen.pt")
    with pytest.raises(ValueError, match=rf"misshapen keys \[{second} \(3,\) in file"):
        load_pretrained(build_backbone(BackboneSpec("tiny", "rgb", 0.05)), tmp_path / "misshapen.pt")


def test_label_fraction_of_scenes_keeps_whole_scenes(tiny_scenes):
    train = split_scenes(tiny_scenes, "train")
    kept = limited_labels(tiny_scenes, 0.1, "scenes", seed=0)
    assert len(kept) == 1 and kept[0].name in train
    assert (kept[0].points.label >= 0).mean() > 0.5


def test_label_fraction_of_points_hides_the_rest(tiny_scenes):
    full = limited_labels(tiny_scenes, 1.0, "points", seed=0)
    tenth = limited_labels(tiny_scenes, 0.1, "points", seed=0)
    labelled_full = sum((s.points.label >= 0).sum() for s in full)
    labelled_tenth = sum((s.points.label >= 0).sum() for s in tenth)
    assert 0.07 < labelled_tenth / labelled_full < 0.13
