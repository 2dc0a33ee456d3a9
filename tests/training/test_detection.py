"""Detection's step pieces: every tensor they make follows the device of their input (checked on PyTorch's
`meta` device, which refuses to mix with CPU tensors as CUDA does), a scene without boxes gives a finite loss,
and the history row of an evaluation holds each loss term and the recall beside mAP."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pix2point.evaluation.detection_metrics import DetectionScores
from pix2point.io.scannet import aligned, read_axis_alignment, read_scan
from pix2point.io.scannet_boxes import SceneBoxes, read_scene_boxes
from pix2point.models.backbone import BackboneSpec, build_backbone
from pix2point.models.votenet import DetectionModel, HeadOutput, Seeds, VoteHead, VoteHeadSpec, farthest_point_sampling
from pix2point.synthetic.scene import SyntheticSceneConfig, write_synthetic_scene
from pix2point.training.finetuning.detection import evaluation_record
from pix2point.training.finetuning.detection_data import DetectionScene, batch_to, detection_batch
from pix2point.training.finetuning.detection_loss import TERMS, SceneTargets, detection_loss, scene_loss

META = torch.device("meta")
SPEC = BackboneSpec("tiny", "rgb", 0.05)
HEAD = VoteHeadSpec(18, num_seeds=64, num_proposals=16, width=16)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> DetectionScene:
    scene_dir = write_synthetic_scene(tmp_path_factory.mktemp("detection"), "scene0000_00", seed=0, config=SyntheticSceneConfig(
        frames=1, color_size=(32, 24), depth_size=(32, 24), points=3000))
    points, _ = aligned(read_scan(scene_dir), [], read_axis_alignment(scene_dir))
    return DetectionScene(scene_dir.name, points, read_scene_boxes(scene_dir, points.xyz))


def tensors_of(value) -> list[tuple[str, torch.Tensor]]:
    """Every tensor inside dataclasses and lists, with its path."""
    if isinstance(value, torch.Tensor):
        return [("", value)]
    if isinstance(value, list):
        return [(f"[{i}]{path}", t) for i, item in enumerate(value) for path, t in tensors_of(item)]
    if dataclasses.is_dataclass(value):
        return [(f".{f.name}{path}", t) for f in dataclasses.fields(value) for path, t in tensors_of(getattr(value, f.name))]
    return []


def test_a_steps_batch_seeds_and_targets_move_to_the_models_device_together(scene):
    batch = detection_batch([scene, scene], SPEC, HEAD.num_seeds, np.random.default_rng(0), augment=True)
    moved = batch_to(META, *batch)
    found = tensors_of(list(moved))
    assert len(found) == len(tensors_of(list(batch))) >= 5 + 3 + 2 * 3
    assert [path for path, tensor in found if tensor.device != META] == []


def test_farthest_point_sampling_makes_its_indices_on_the_points_device():
    chosen = farthest_point_sampling(torch.rand(50, 3, device=META), 8)
    assert chosen.device == META and chosen.dtype == torch.long and chosen.shape == (8,)
    on_cpu = farthest_point_sampling(torch.tensor([[0.0, 0, 0], [1, 0, 0], [5, 0, 0], [2, 0, 0]], dtype=torch.float64), 3)
    assert on_cpu.tolist() == [0, 2, 3]  # 0, then 5 m away, then the 2 m point (1 m is nearer to 0)


def test_the_head_runs_where_its_input_is():
    head = VoteHead(8, HEAD).to(META)
    seeds = Seeds(torch.zeros(2 * 64, dtype=torch.long), torch.arange(2 * 64), torch.rand(2 * 64, 3)).to(META)
    out = head(torch.rand(2 * 64, 8, device=META), seeds, scenes=2)
    assert [path for path, tensor in tensors_of(out) if tensor.device != META] == []


def head_output(scenes: int, device: torch.device) -> HeadOutput:
    seeds, proposals = scenes * HEAD.num_seeds, scenes * HEAD.num_proposals
    shapes = ((seeds, 3), (seeds, 3), (proposals, 3), (proposals, 2), (proposals, 3), (proposals, 3), (proposals, 18))
    return HeadOutput(*(torch.rand(shape, device=device) for shape in shapes))


@pytest.mark.parametrize("boxes", [0, 2])
def test_every_loss_term_is_made_on_the_device_of_the_head_output(boxes):
    seed_instance = torch.tensor([0, 1, -1] * 21 + [-1]) if boxes else torch.full((64,), -1)
    target = SceneTargets(seed_instance, torch.tensor([[0, 0, 0, 1, 1, 1], [2, 2, 0, 3, 4, 1.0]])[:boxes],
                          torch.tensor([3, 5])[:boxes]).to(META)
    terms = scene_loss(head_output(1, META), slice(0, 64), slice(0, 16), target)
    assert sorted(terms) == sorted(TERMS)
    assert {name: term.device for name, term in terms.items()} == {name: META for name in TERMS}


def test_a_batch_of_scenes_without_boxes_has_a_finite_loss_and_gradient(scene, one_thread):
    """Detection's counterpart of a batch without a labelled point: an annotated scene without an object of
    the 18 classes. Its proposals are all negatives, so the objectness term still trains; nothing is NaN."""
    empty = DetectionScene(scene.name, scene.points, SceneBoxes(
        np.full(len(scene.points.xyz), -1, np.int32), np.zeros((0, 6), np.float32), np.zeros(0, np.int64), True))
    torch.manual_seed(0)
    model = DetectionModel(build_backbone(SPEC), HEAD)
    batch, seeds, targets = detection_batch([empty, empty], SPEC, HEAD.num_seeds, np.random.default_rng(0), augment=False)
    loss, terms = detection_loss(model(batch, seeds), targets)
    loss.backward()
    assert np.isfinite(loss.item()) and loss.item() > 0 and terms["objectness"] > 0
    assert terms["vote"] == terms["centre"] == terms["size"] == terms["class"] == 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_an_evaluation_record_holds_each_loss_term_and_the_recall_beside_map():
    running = [{"loss": 2.0, "vote": 0.5, "objectness": 0.25, "centre": 1.0, "size": 0.1, "class": 3.0},
               {"loss": 4.0, "vote": 1.5, "objectness": 0.75, "centre": 2.0, "size": 0.3, "class": 1.0}]
    nan = float("nan")
    scores = (DetectionScores(0.25, np.array([0.5, nan, 1.0]), np.array([0.25, nan, 0.75])),
              DetectionScores(0.5, np.array([0.0, nan, 0.5]), np.array([0.0, nan, 0.5])))
    record = evaluation_record("run", 10, running, scores, 12.5)
    assert (record.run, record.step, record.train_loss, record.seconds) == ("run", 10, 3.0, 12.5)
    assert (record.loss_vote, record.loss_objectness, record.loss_centre, record.loss_size, record.loss_class) == \
        pytest.approx((1.0, 0.5, 1.5, 0.2, 2.0))
    assert (record.val_map25, record.val_map50, record.val_recall25) == (0.75, 0.25, 0.5)
