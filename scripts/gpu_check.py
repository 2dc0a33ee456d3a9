"""The GPU check that scripts/gpu_check.sh runs (it installs MinkowskiEngine first), without Ray.

    python scripts/gpu_check.py          # a CUDA machine: GPU against CPU, then the figures on the GPU
    python scripts/gpu_check.py --cpu    # the CPU half (smoke sizes): every step run, compared CPU with CPU

1. Agreement. One step of each training stage's model and loss, through the stages' own functions
   (PPKTTraining.step and I2PMAETraining.step whole, with their optimiser step; segmentation_loss,
   detection_batch + DetectionModel + detection_loss, classify_loss, object_finetuning.step_loss, fewshot's
   Image2Point recipe; features2d's teacher_features), on the device and on the CPU from the same inputs and
   the same initial weights. Layers that draw random numbers (dropout, drop path, drop connect) are off for
   it (CUDA's generator draws other numbers than the CPU's), I2P-MAE's masks come from a CPU generator for
   both, and TF32 is off. Tolerances, chosen for float32 sums taken in another order (MinkowskiEngine's CUDA
   kernels accumulate with atomics) and far below what a wrong kernel, a wrong device or a missing term gives:
     loss: |loss_device - loss_cpu| <= 1e-4 * max(1, |loss_cpu|)
     gradients: ||g_device - g_cpu|| / ||g_cpu|| <= 1e-3, over all parameters as one vector
     teachers: max |f_device - f_cpu| <= 1e-3 * max |f_cpu|, in float32 (before features2d's float16)
2. Figures, on the device with the training's default precision: teacher frames/s (features2d's own
   batch function), the PPKT step, the VoteNet detection step and the I2P-MAE step (s/step, warm-up steps
   not timed), one line each. GPU sizes are the `scannet` profile's (PPKT, ResNet-50 teacher), VoteNet's
   (1024 seeds, 256 proposals, 8 scans of 150k points) and I2P-MAE's reference pretraining (64 objects of
   2048 points); --cpu uses the smoke profile's.

Inputs are synthetic (seeded): points on the walls, floor and boxes of a room, random colours, pixels and
teacher maps, unit-sphere objects. Prints `agree ...`, `figure ...` and `FAIL ...` lines and a summary; exits
1 if a step raised or a comparison failed.
"""

from __future__ import annotations

import argparse
import functools
import dataclasses
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lib"), str(ROOT)]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from pix2point.engine.pipeline import load_pipeline  # noqa: E402
from pix2point.io.scannet_boxes import SCANNET18_CLASS_NAMES, SceneBoxes, instance_boxes  # noqa: E402
from pix2point.io.scenes_table import IGNORE_LABEL, ScenePoints  # noqa: E402
from pix2point.models.backbone import build_backbone  # noqa: E402
from pix2point.models.backbone_spec import BackboneSpec  # noqa: E402
from pix2point.models.teacher_layers import teacher_layer, view_teacher_layer  # noqa: E402
from pix2point.training.runtime.determinism import step_streams  # noqa: E402
from pix2point.training.runtime.device import to_device  # noqa: E402
from pix2point.training.runtime.sample_stream import Arrays, StepData, sample_bytes  # noqa: E402

LOSS_RTOL = 1e-4
GRAD_RTOL = 1e-3
TEACHER_RTOL = 1e-3
SCANNET_COLOR_SIZE = (1296, 968)  # ScanNet's colour images (width, height): the pairs' pixel grid
# ~30k points a kept frame: the README's ScanNet sample storage (70 GB for 100k frames) at 23 bytes a point.
SCANNET_FRAME_POINTS = 30_000
SCANNET_SCAN_POINTS = 150_000  # a ScanNet scan (vh_clean_2), the README's scale rehearsal's size
VOTENET = {"num_seeds": 1024, "num_proposals": 256, "head_width": 128, "scenes_per_batch": 8}  # VoteNet's ScanNet setting
I2P_MAE_POINTS = 2048  # I2P-MAE's ShapeNet pretraining: 2048 points an object, batch 64 (I2PMAEParams' defaults)


@dataclass(frozen=True)
class Sizes:
    """What one mode runs: which pipeline profile's params, and the synthetic data's shapes."""

    profile: str | None  # pipeline.yaml profile for the scene stages' params (None: the default)
    color_size: tuple[int, int]  # (width, height) of the pairs' pixel grid
    frame_points: int  # points a PPKT frame sees (figure)
    scan_points: int  # points of a detection scan (figure)
    teacher_size: tuple[int, int]  # (width, height) of the teacher figures' images
    teacher_batch: int
    gpu_sizes: bool  # the figures at VoteNet's and I2P-MAE's reference sizes
    warmup: int  # untimed steps per figure (first-call allocations, cuDNN's algorithm search)
    repeats: int  # timed steps per figure


GPU = Sizes("scannet", SCANNET_COLOR_SIZE, SCANNET_FRAME_POINTS, SCANNET_SCAN_POINTS, (640, 480), 32, True, 2, 5)
SMOKE = Sizes("smoke", (160, 120), 2000, 3000, (96, 64), 2, False, 1, 1)
COMPARE_FRAME_POINTS = 2000
COMPARE_SCAN_POINTS = 8000


# --- synthetic inputs ------------------------------------------------------------------------------------

def room_points(rng: np.random.Generator, count: int, boxes: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """[count, 3] float32 points on the floor and walls of a 6 x 6 x 3 m room and on `boxes` boxes standing in
    it (a scan's surfaces, so voxel neighbourhoods look like a scan's), and [count] int instance ids
    (-1: room)."""
    lows = np.column_stack([rng.uniform(0.5, 4.5, (boxes, 2)), np.zeros(boxes)])
    highs = lows + rng.uniform([0.3, 0.3, 0.4], [1.5, 1.5, 1.2], (boxes, 3))
    instance = np.where(rng.random(count) < 0.4, rng.integers(0, boxes, count), -1)
    on_box = instance >= 0
    room = np.array([6.0, 6.0, 3.0])
    xyz = rng.uniform(0, 1, (count, 3)) * room
    # Room: one coordinate snapped to the floor (z = 0) or a wall; box: to a face of its box.
    wall = rng.integers(0, 5, count)
    axis, side = np.array([2, 0, 0, 1, 1])[wall], np.array([0, 0, 1, 0, 1])[wall]
    xyz[np.arange(count), axis] = side * room[axis]
    inside = lows[instance[on_box]] + rng.random((on_box.sum(), 3)) * (highs - lows)[instance[on_box]]
    face_axis = rng.integers(0, 3, on_box.sum())
    face = np.where(rng.random((on_box.sum(), 1)) < 0.5, lows[instance[on_box]], highs[instance[on_box]])
    inside[np.arange(len(inside)), face_axis] = face[np.arange(len(inside)), face_axis]
    xyz[on_box] = inside
    return xyz.astype(np.float32), instance


def frame_arrays(rng: np.random.Generator, points: int, color_size: tuple[int, int],
                 feature_shape: tuple[int, int, int]) -> Arrays:
    """One streamed PPKT sample (io/samples_table.FrameSample.arrays())."""
    width, height = color_size
    return {"xyz": room_points(rng, points)[0], "rgb": rng.integers(0, 256, (points, 3), dtype=np.uint8),
            "pixels": np.column_stack([rng.integers(0, width, points), rng.integers(0, height, points)]),
            "features": rng.standard_normal(feature_shape).astype(np.float16),
            "image_size": np.array(color_size, np.int64)}


def scene_points(rng: np.random.Generator, points: int, classes: int) -> tuple[ScenePoints, np.ndarray]:
    xyz, instance = room_points(rng, points)
    label = np.where(rng.random(points) < 0.1, IGNORE_LABEL, rng.integers(0, classes, points)).astype(np.int16)
    return ScenePoints(xyz, rng.integers(0, 256, (points, 3), dtype=np.uint8), label), instance


def detection_scene(rng: np.random.Generator, points: int, name: str):
    from pix2point.training.finetuning.detection_data import DetectionScene

    scene, instance = scene_points(rng, points, 20)
    count = int(instance.max()) + 1
    boxes = SceneBoxes(instance.astype(np.int32), instance_boxes(scene.xyz, instance, count),
                       rng.integers(0, len(SCANNET18_CLASS_NAMES), count).astype(np.int64), True)
    return DetectionScene(name, scene, boxes)


def object_clouds(rng: np.random.Generator, objects: int, points: int) -> np.ndarray:
    """[objects, points, 3] float32 ellipsoid surfaces inside the unit sphere."""
    directions = rng.standard_normal((objects, points, 3))
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    axes = rng.uniform(0.4, 1.0, (objects, 1, 3))
    return (directions * axes).astype(np.float32)


class InMemorySamples:
    """training/runtime/sample_stream.Samples over arrays made here: every step trains on the same batch."""

    def __init__(self, samples: list[Arrays]):
        self.samples = samples

    def next(self, step: int) -> StepData:
        return StepData(list(range(len(self.samples))), self.samples, 0, sum(map(sample_bytes, self.samples)), 0.0)


# --- the stages' steps -----------------------------------------------------------------------------------

@dataclass
class Step:
    """One training stage's step: `run(device)` builds the step's model (seeded: the same initial weights on
    every device) and its batch (on the CPU, from fixed inputs), takes the step on `device` with the random
    layers off and returns (its loss, the model holding its gradients)."""

    name: str
    run: Callable[[torch.device], tuple[float, nn.Module]]


def plain_step(name: str, build: Callable[[], nn.Module],
               loss: Callable[[nn.Module, torch.device], torch.Tensor]) -> Step:
    """A stage whose step is a loss function: forward and backward, no optimiser step."""

    def run(device: torch.device) -> tuple[float, nn.Module]:
        torch.manual_seed(0)
        model = without_random_layers(build().to(device).train())
        value = loss(model, device)
        value.backward()
        return value.item(), model

    return Step(name, run)


def trained_step(name: str, make: Callable[[torch.device], object]) -> Step:
    """A StepTraining stage (training/loop.py): its whole `step()`, optimiser step included, with the CPU's
    random streams on every device (the same draws; I2P-MAE's masks too, training/pretraining/masking.py)."""

    def run(device: torch.device) -> tuple[float, nn.Module]:
        training = make(device)
        without_random_layers(training.model)
        values, _ = training.step(step_streams(0, 0, 0, torch.device("cpu")))
        return values["loss"], training.model

    return Step(name, run)


def pipeline_params(profile: str | None) -> dict:
    pipeline = load_pipeline(ROOT / "pipeline.yaml", profile)
    return {name: stage.params for name, stage in pipeline.stages.items()}


def backbone_spec(params: dict) -> BackboneSpec:
    pretrain = params["pretrain"]
    return BackboneSpec(pretrain.backbone, pretrain.input_features, pretrain.voxel_size)


def teacher_map_shape(params: dict) -> tuple[int, int, int]:
    from stages.features2d import feature_shape

    features2d = params["features2d"]
    return feature_shape(teacher_layer(features2d.teacher, features2d.layer), features2d.image_size)


def ppkt_training(params: dict, sizes: Sizes, frames: int, pairs: int, points: int, device: torch.device, out: Path):
    """PPKTTraining of the profile's pretrain params (one worker taking the whole batch) over synthetic frames."""
    from stages.pretrain import ppkt_config

    from pix2point.training.pretraining.ppkt import build_training

    pretrain = params["pretrain"].model_copy(update={"num_workers": 1, "flip_2d": False, "frames_per_batch": frames,
                                                     "num_pairs": pairs})
    config = ppkt_config(pretrain, {"scenes": out, "features2d": out, "pairs": out}, out)
    shape = teacher_map_shape(params)
    rng = np.random.default_rng(1)
    samples = InMemorySamples([frame_arrays(rng, points, sizes.color_size, shape) for _ in range(frames)])
    return build_training(config, 0, device, samples, teacher_channels=shape[0])


def i2p_mae_params(params: dict, sizes: Sizes):
    from stages.pretrain import I2PMAEParams

    return I2PMAEParams() if sizes.gpu_sizes else params["pretrain_i2p_mae"]


def i2p_mae_training(params: dict, sizes: Sizes, batch: int, points: int, device: torch.device, out: Path):
    """I2PMAETraining of I2P-MAE's params (guided masking, 2D target) over synthetic objects and views."""
    from stages.pretrain import i2p_mae_config

    from pix2point.training.pretraining.i2p_mae import build_training

    mae = i2p_mae_params(params, sizes).model_copy(update={"num_workers": 1, "batch_size": batch})
    config = i2p_mae_config(mae, {"objects": out, "views2d": out}, out, train_objects=batch)
    views = params["views2d"]
    channels = 3 * view_teacher_layer(views.teacher, views.layer).channels
    rng = np.random.default_rng(2)
    clouds = object_clouds(rng, batch, points)
    samples = InMemorySamples([{"points": cloud, "saliency": rng.random(points).astype(np.float32),
                                "features": rng.standard_normal((points, channels)).astype(np.float16)}
                               for cloud in clouds])
    return build_training(config, 0, device, samples, shapes=(points, channels))


def stage_steps(params: dict, sizes: Sizes, out: Path) -> list[Callable[[], Step]]:
    """Builders of each training stage's compared step (small inputs, the profile's networks)."""
    def ppkt() -> Step:
        return trained_step("ppkt", lambda device: ppkt_training(params, sizes, 2, 256, COMPARE_FRAME_POINTS, device,
                                                                 out))

    def i2p_mae() -> Step:
        points = 256 if not sizes.gpu_sizes else 1024
        return trained_step("i2p_mae", lambda device: i2p_mae_training(params, sizes, 4, points, device, out))

    def segmentation() -> Step:
        from pix2point.training.finetuning.segmentation import SegmentationModel, segmentation_loss

        finetune, spec = params["finetune"], backbone_spec(params)
        scene, _ = scene_points(np.random.default_rng(3), COMPARE_SCAN_POINTS, 20)
        return plain_step("finetune", lambda: SegmentationModel(build_backbone(spec), 20), lambda model, device: segmentation_loss(
            model, [scene], spec, np.random.default_rng(0), finetune.point_augmentation(), device))

    def detection() -> Step:
        from pix2point.models.votenet import DetectionModel, VoteHeadSpec
        from pix2point.training.finetuning.detection_data import detection_batch
        from pix2point.training.finetuning.detection_loss import detection_loss

        detect, spec = params["detect"], backbone_spec(params)
        head = VoteHeadSpec(len(SCANNET18_CLASS_NAMES), detect.num_seeds, detect.num_proposals, detect.group_radius,
                            detect.group_size, detect.head_width)
        scene = detection_scene(np.random.default_rng(4), COMPARE_SCAN_POINTS, "compare")

        def loss(model: nn.Module, device: torch.device) -> torch.Tensor:
            batch, seeds, targets = detection_batch([scene], spec, head.num_seeds, np.random.default_rng(0), True)
            batch, seeds, targets = to_device((batch, seeds, targets), device)
            return detection_loss(model(batch, seeds), targets)[0]

        return plain_step("detect", lambda: DetectionModel(build_backbone(spec), head), loss)

    def classify() -> Step:
        from stages.classify import classifier_spec

        from pix2point.models.object_classifier import build_classifier
        from pix2point.training.finetuning.classification import ClassifyConfig, classify_loss

        block = params["classify"]
        config = ClassifyConfig(out, out, classifier_spec(block, 10), tuple(map(str, range(10))), (), 1,
                                block.batch_size, block.voxel_size, block.voxel_rounding, block.learning_rate,
                                block.momentum, block.weight_decay, block.object_augmentation(), 1, False)
        rng = np.random.default_rng(5)
        samples = [{"points": cloud, "label": np.int16(rng.integers(0, 10))}
                   for cloud in object_clouds(rng, block.batch_size, 256 if not sizes.gpu_sizes else 1024)]
        return plain_step("classify", lambda: build_classifier(config.classifier, "scratch")[0], lambda model, device: classify_loss(
            model, samples, config, np.random.default_rng(0), device))

    def finetune_objects() -> Step:
        from pix2point.models.point_m2ae_classifier import PointM2AEClassifier
        from pix2point.training.finetuning.object_finetuning import step_loss
        from pix2point.training.finetuning.object_finetuning_data import (
            CloudAugmentation, fps_pools, pool_size, training_clouds)

        block = params["finetune_objects"]
        spec = dataclasses.replace(i2p_mae_params(params, sizes).encoder_spec(), group_sizes=block.group_sizes)
        rng = np.random.default_rng(6)
        clouds = object_clouds(rng, min(block.batch_size, 8), 2 * block.points)
        pools = fps_pools(clouds, pool_size(block.points, clouds.shape[1]))
        labels = torch.from_numpy(rng.integers(0, 10, len(clouds)))
        augmentation = CloudAugmentation(block.scale_range, block.translate, 2 if block.rotate else None)

        def loss(model: nn.Module, device: torch.device) -> torch.Tensor:
            batch = training_clouds(clouds, pools, block.points, np.random.default_rng(0), augmentation)
            return step_loss(model, *to_device((batch, labels), device), block.label_smoothing)

        return plain_step("finetune_objects", lambda: PointM2AEClassifier(spec, 10, block.pooling, block.local_radius,
                                                                          block.drop_path_rate), loss)

    def fewshot() -> Step:
        from stages.fewshot import Network, recipes

        block = params["fewshot"].model_copy(update={"networks": [Network(family="image2point")]})
        (recipe,) = recipes(block, {}).values()
        rng = np.random.default_rng(7)
        clouds = object_clouds(rng, 10, block.point_m2ae.points)
        labels = torch.from_numpy(np.repeat(np.arange(5), 2))
        return plain_step("fewshot", lambda: recipe.build(5), lambda model, device: recipe.loss(
            model(recipe.training_batch(clouds, np.random.default_rng(0), device)), labels.to(device)))

    return [ppkt, i2p_mae, segmentation, detection, classify, finetune_objects, fewshot]


# --- agreement ---------------------------------------------------------------------------------------------

def without_random_layers(model: nn.Module) -> nn.Module:
    """Dropout, drop path and drop connect off (their own training flag only: BatchNorm keeps training)."""
    from pix2point.models.transformer import DropPath

    for module in model.modules():
        if isinstance(module, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, DropPath)) \
                or hasattr(module, "drop_connect_rate"):
            module.training = False
    return model


def gradient(model: nn.Module) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().flatten().double().cpu()
                      for p in model.parameters() if p.requires_grad])


def agree(step: Step, device: torch.device) -> str:
    """Loss and gradients of `step` on `device` against the CPU; raises AssertionError past the tolerances."""
    (loss_cpu, model_cpu), (loss_device, model_device) = step.run(torch.device("cpu")), step.run(device)
    grad_cpu, grad_device = gradient(model_cpu), gradient(model_device)
    loss_error, loss_bound = abs(loss_device - loss_cpu), LOSS_RTOL * max(1.0, abs(loss_cpu))
    grad_error = float((grad_device - grad_cpu).norm() / grad_cpu.norm().clamp_min(1e-30))
    line = (f"agree {step.name:<17} loss {loss_cpu:.6f} cpu {loss_device:.6f} {device.type} "
            f"|d| {loss_error:.1e} <= {loss_bound:.1e}, gradient rel {grad_error:.1e} <= {GRAD_RTOL:.0e}")
    if not (loss_error <= loss_bound and grad_error <= GRAD_RTOL and grad_cpu.norm() > 0):
        raise AssertionError(line)
    return line + " ok"


@functools.cache
def random_teacher(name: str, layer: str | None, directory: Path):
    """The features2d teacher `name` cut at `layer`, built by models/teachers.build_teacher from a file of
    random weights (only costs and agreement are checked; no ImageNet file on a bare machine). One per
    (name, layer): the agreement and the figure share it."""
    from pix2point.models.resnet import resnet
    from pix2point.models.teachers import build_teacher

    path = directory / f"{name}_random.pt"
    if not path.exists():
        if name == "efficientnet_lite0":
            from efficientnet_lite_pytorch import EfficientNet

            network = EfficientNet.from_name("efficientnet-lite0", image_size=None)
        else:
            network = resnet(name)
        torch.save(network.state_dict(), path)
    return build_teacher(name, layer, path)


def teacher_agree(name: str, layer: str | None, device: torch.device, directory: Path) -> str:
    """The teacher's float32 maps (features2d's normalisation and forward, before the float16 it stores) of the
    same images on `device` and on the CPU."""
    from pix2point.io.images import normalise_images

    torch.manual_seed(0)
    teacher = random_teacher(name, layer, directory)
    pixels = torch.from_numpy(np.random.default_rng(8).integers(0, 256, (2, 160, 224, 3), dtype=np.uint8))
    maps = []
    for where in (torch.device("cpu"), device):
        with torch.inference_mode():
            maps.append(teacher.to(where)(normalise_images(pixels.to(where), teacher.mean, teacher.std)).cpu())
    error, bound = float((maps[1] - maps[0]).abs().max()), TEACHER_RTOL * float(maps[0].abs().max())
    line = f"agree teacher {name:<17} max |d| {error:.1e} <= {bound:.1e}"
    if not error <= bound:
        raise AssertionError(line)
    return line + " ok"


# --- figures ---------------------------------------------------------------------------------------------

def timed(run: Callable[[], object], device: torch.device, sizes: Sizes) -> tuple[float, float]:
    """(seconds per call after `sizes.warmup` untimed calls, peak device memory GB; 0 on the CPU)."""
    synchronise = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(sizes.warmup):
        run()
    synchronise()
    started = time.perf_counter()
    for _ in range(sizes.repeats):
        run()
    synchronise()
    peak = torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else 0.0
    return (time.perf_counter() - started) / sizes.repeats, peak


def teacher_figure(name: str, layer: str | None, sizes: Sizes, device: torch.device, directory: Path) -> str:
    from stages.features2d import teacher_features

    teacher = random_teacher(name, layer, directory).to(device)
    width, height = sizes.teacher_size
    pixels = np.random.default_rng(9).integers(0, 256, (sizes.teacher_batch, height, width, 3), dtype=np.uint8)
    seconds, peak = timed(lambda: teacher_features(teacher, pixels, device), device, sizes)
    return (f"figure teacher_{name}: {sizes.teacher_batch / seconds:.1f} frames/s ({teacher.layer} at {width}x{height}, "
            f"batch {sizes.teacher_batch}, uint8 in, float16 maps back on the CPU; peak {peak:.1f} GB)")


def ppkt_figure(params: dict, sizes: Sizes, device: torch.device, out: Path) -> str:
    pretrain = params["pretrain"]
    training = ppkt_training(params, sizes, pretrain.frames_per_batch, pretrain.num_pairs, sizes.frame_points, device, out)
    counter = iter(range(1_000_000))
    seconds, peak = timed(lambda: training.step(training.streams(next(counter))), device, sizes)
    shape = "x".join(map(str, teacher_map_shape(params)))
    return (f"figure ppkt_step: {seconds:.3f} s/step ({pretrain.backbone}, {pretrain.frames_per_batch} frames x "
            f"{sizes.frame_points} points, {pretrain.num_pairs} pairs, teacher maps {shape}; the whole step: batch "
            f"on the CPU, forward, backward, SGD; peak {peak:.1f} GB)")


def detection_figure(params: dict, sizes: Sizes, device: torch.device) -> str:
    from pix2point.models.votenet import DetectionModel, VoteHeadSpec
    from pix2point.training.finetuning.detection_data import detection_batch
    from pix2point.training.finetuning.detection_loss import detection_loss

    detect = params["detect"].model_copy(update=VOTENET if sizes.gpu_sizes else {})
    spec = backbone_spec(params)
    head = VoteHeadSpec(len(SCANNET18_CLASS_NAMES), detect.num_seeds, detect.num_proposals, detect.group_radius,
                        detect.group_size, detect.head_width)
    rng = np.random.default_rng(10)
    scenes = [detection_scene(rng, sizes.scan_points, f"scene{i}") for i in range(detect.scenes_per_batch)]
    torch.manual_seed(0)
    model = DetectionModel(build_backbone(spec), head).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=detect.learning_rate, weight_decay=detect.weight_decay)

    def step() -> None:
        batch, seeds, targets = detection_batch(scenes, spec, head.num_seeds, rng, detect.augment)
        loss = detection_loss(model(*to_device((batch, seeds), device)), to_device(targets, device))[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds, peak = timed(step, device, sizes)
    return (f"figure votenet_step: {seconds:.3f} s/step ({spec.size} + VoteNet head, {detect.scenes_per_batch} scan(s) x "
            f"{sizes.scan_points} points, {head.num_seeds} seeds, {head.num_proposals} proposals, width {head.width}; "
            f"peak {peak:.1f} GB)")


def i2p_mae_figure(params: dict, sizes: Sizes, device: torch.device, out: Path) -> str:
    mae = i2p_mae_params(params, sizes)
    points = I2P_MAE_POINTS if sizes.gpu_sizes else 256
    training = i2p_mae_training(params, sizes, mae.batch_size, points, device, out)
    counter = iter(range(1_000_000))
    seconds, peak = timed(lambda: training.step(training.streams(next(counter))), device, sizes)
    return (f"figure i2p_mae_step: {seconds:.3f} s/step ({mae.batch_size} objects x {points} points, groups "
            f"{list(mae.num_groups)}, dims {list(mae.encoder_dims)}, depths {list(mae.encoder_depths)}, masking "
            f"{mae.masking}, 2D target {mae.target_2d}; peak {peak:.1f} GB)")


# --- main ----------------------------------------------------------------------------------------------------

def run_all(sizes: Sizes, device: torch.device) -> tuple[list[str], list[str]]:
    """(printed lines, failures): every check runs, whatever an earlier one did."""
    params = pipeline_params(sizes.profile)
    lines, failures = [], []

    def attempt(label: str, check: Callable[[], str]) -> None:
        try:
            line = check()
        except Exception as error:  # a failed check is reported and the others still run
            line = f"FAIL {label}: {type(error).__name__}: {error}"
            failures.append(line)
            traceback.print_exc()
        lines.append(line)
        print(line, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        precision = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        for build in stage_steps(params, sizes, out):
            attempt(f"agree {build.__name__}", lambda: agree(build(), device))
        features2d = params["features2d"]
        teachers = [(features2d.teacher, features2d.layer), ("resnet50", "layer4"), ("efficientnet_lite0", None)]
        teachers = list(dict.fromkeys((name, teacher_layer(name, layer).name) for name, layer in teachers))
        for name, layer in teachers:
            attempt(f"agree teacher {name}", lambda: teacher_agree(name, layer, device, out))
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = precision
        for name, layer in (("resnet50", "layer4"), ("efficientnet_lite0", None)):
            attempt(f"figure teacher_{name}", lambda: teacher_figure(name, layer, sizes, device, out))
        attempt("figure ppkt_step", lambda: ppkt_figure(params, sizes, device, out))
        attempt("figure votenet_step", lambda: detection_figure(params, sizes, device))
        attempt("figure i2p_mae_step", lambda: i2p_mae_figure(params, sizes, device, out))
    return lines, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="the CPU half at smoke sizes (no GPU needed)")
    args = parser.parse_args(argv)
    if args.cpu:
        device, sizes = torch.device("cpu"), SMOKE
        # The smoke steps are small: one thread runs them several times faster than two on a shared 2-core
        # machine (README, Reproducibility), and the test suite runs this.
        torch.set_num_threads(1)
    else:
        import MinkowskiEngine as ME

        if not torch.cuda.is_available() or not ME.is_cuda_available():
            print(f"gpu_check: torch {torch.__version__} sees CUDA: {torch.cuda.is_available()}, MinkowskiEngine "
                  f"{ME.__version__} built with CUDA: {ME.is_cuda_available()}; both are needed (--cpu for the CPU "
                  "half)", file=sys.stderr)
            return 2
        device, sizes = torch.device("cuda"), GPU
        print(f"gpu_check: {torch.cuda.get_device_name()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
              f"MinkowskiEngine {ME.__version__}", flush=True)
    started = time.perf_counter()
    lines, failures = run_all(sizes, device)
    agreements, figures = sum(line.startswith("agree") for line in lines), sum(line.startswith("figure") for line in lines)
    print(f"gpu_check: {agreements} agreements ok, {figures} figures, {len(failures)} failed, "
          f"{time.perf_counter() - started:.0f} s on {device.type}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
