"""Finetuning pieces: pretrained weights load (or fail loudly), labels are limited as asked, mIoU is right."""

import numpy as np
import pytest
import torch

from pix2point.models.backbone import BackboneSpec, build_backbone, load_pretrained
from pix2point.models.res16unet import Res16UNet, UNetSize
from pix2point.training.finetuning.segmentation_data import split_scenes
from tests.reference_loaders import limited_labels


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


def test_a_step_on_a_scene_without_labels_is_skipped_and_moves_no_weight(tmp_path, one_thread):
    """A ScanNet scene without labels.ply reads as all-ignored points; with one scene per batch the mean
    cross-entropy over no point was NaN, and SGD's momentum and weight decay still moved the weights."""
    from pix2point.io.scannet import read_scan
    from pix2point.synthetic.scene import SyntheticSceneConfig, write_synthetic_scene
    from pix2point.training.augment import PointAugmentation
    from pix2point.training.finetuning.segmentation import SegmentationModel, scene_batch, train_step

    scene_dir = write_synthetic_scene(tmp_path, "scene0000_00", seed=0, config=SyntheticSceneConfig(
        frames=1, color_size=(32, 24), depth_size=(32, 24), points=2000))
    labelled = read_scan(scene_dir)
    (scene_dir / "scene0000_00_vh_clean_2.labels.ply").unlink()
    unlabelled = read_scan(scene_dir)
    spec = BackboneSpec("tiny", "rgb", 0.05)
    torch.manual_seed(0)
    model = SegmentationModel(build_backbone(spec), 20)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    loss_function = torch.nn.CrossEntropyLoss()

    stepped, loss = train_step(model, optimizer, schedule, loss_function,
                               *scene_batch([unlabelled], spec, None, PointAugmentation()))
    assert (stepped, loss) == (False, None)
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    assert not optimizer.state  # no momentum buffer started on no evidence
    assert schedule.last_epoch == 1  # the rate follows the step number, skipped or not

    stepped, loss = train_step(model, optimizer, schedule, loss_function,
                               *scene_batch([labelled], spec, None, PointAugmentation()))
    assert stepped and np.isfinite(loss) and loss > 0
    assert schedule.last_epoch == 2


def test_the_window_loss_is_none_not_nan_when_every_step_was_skipped():
    from pix2point.training.finetuning.segmentation import window_loss

    assert window_loss([]) is None
    assert window_loss([1.0, 2.0, 6.0]) == 3.0
