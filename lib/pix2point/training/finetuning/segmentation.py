"""Semantic-segmentation finetuning of a (pretrained or fresh) backbone with a new head, on Ray Train.

A trainer trains its runs (init x label fraction x seed) one after another (training/runtime/trials.py); its
checkpoints hold the run in progress, and each finished run's result and history. The run's training
scenes stream to the workers (training/runtime/sample_stream.py, segmentation_data.SceneSource), distinct scenes in
each step's batch. Validation runs on rank 0 only, reading one validation scene at a time. A step whose
batches hold no labelled point on any worker is skipped, counted in the history (`skipped_steps`) and
reported on the console.

Ray is imported by the Ray Train entry points (train_loop, start_run) alone: the model and `segmentation_loss`
import without it (scripts/gpu_check.sh runs them on a GPU machine that has no Ray).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from pix2point.evaluation.segmentation_metrics import segmentation_scores
from pix2point.io.finetune_table import EpochRecord, RunResult, model_path
from pix2point.io.scenes_table import IGNORE_LABEL, ScenePoints, read_points
from pix2point.models.backbone import BackboneSpec, build_backbone, load_pretrained, point_input_features
from pix2point.models.heads import SegmentationHead
from pix2point.training.augment import PointAugmentation, augment_points
from pix2point.training.runtime.device import to_device
from pix2point.training.finetuning.finetune_loop import Evaluation, FinetuneRun, Finished
from pix2point.training.runtime.run_grid import RunSpec
from pix2point.training.runtime.sample_stream import SampleStream
from pix2point.training.finetuning.segmentation_data import LabelUnit, SceneSource, validation_scenes
from pix2point.models.voxelize import SparseBatch, collate_sparse, voxelize

if TYPE_CHECKING:
    from pix2point.training.runtime.tracking import Scalars


@dataclass(frozen=True)
class FinetuneConfig:
    scenes_dir: Path
    pretrained_backbone: Path | None  # backbone.pt of the pretrain artefact
    out: Path
    backbone: BackboneSpec
    class_names: tuple[str, ...]
    runs: tuple[RunSpec, ...]
    label_unit: LabelUnit
    steps: int  # optimiser steps per run, whatever its label fraction (equal compute)
    eval_every: int
    scenes_per_batch: int
    learning_rate: float
    momentum: float
    weight_decay: float
    augmentation: PointAugmentation
    checkpoint_every: int
    # Each run's training scenes (SceneSource.for_run), by run name: set by the stage for a trainer's runs
    sources: dict[str, SceneSource] = field(default_factory=dict)


class SegmentationModel(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = SegmentationHead(backbone.out_channels, num_classes)

    def forward(self, batch: SparseBatch, sample: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
        tensor = batch.sparse_tensor()
        return self.head(self.backbone(tensor)).F[batch.feature_rows(tensor, sample, point)]


def scene_batch(scenes: list[ScenePoints], spec: BackboneSpec, rng: np.random.Generator | None,
                augmentation: PointAugmentation) -> tuple[SparseBatch, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Collated scenes and, for every labelled point, (sample, point index, label)."""
    samples, sample_index, point_index, labels = [], [], [], []
    for b, points in enumerate(scenes):
        xyz = points.xyz if rng is None else augment_points(points.xyz, rng, augmentation)
        voxels = voxelize(torch.from_numpy(np.ascontiguousarray(xyz, np.float32)), spec.voxel_size)
        samples.append((voxels, voxels.voxel_features(point_input_features(points.rgb, spec.input_features))))
        labelled = np.flatnonzero(points.label != IGNORE_LABEL)
        sample_index.append(np.full(len(labelled), b))
        point_index.append(labelled)
        labels.append(points.label[labelled])
    to_tensor = lambda parts: torch.from_numpy(np.concatenate(parts)).long()  # noqa: E731
    return collate_sparse(samples), to_tensor(sample_index), to_tensor(point_index), to_tensor(labels)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler,
               loss_function: nn.Module, batch: SparseBatch, sample: torch.Tensor, point: torch.Tensor,
               label: torch.Tensor) -> tuple[bool, float | None]:
    """One optimiser step on the labelled points (`scene_batch`'s output), the schedule moved on whether or not
    it stepped (the rate follows the step number) -> (whether the weights moved, this worker's mean
    cross-entropy, None when its batch has no labelled point).

    No worker's batch with a labelled point (a scene without labels.ply, a small label budget): no step at
    all, so neither momentum nor weight decay moves the weights on no evidence (the mean over no point
    would be NaN, pytorch/pytorch#70348). A worker without one while others have some still joins their
    gradient all-reduce, with a zero loss.
    """
    from pix2point.training.runtime import distributed

    if distributed.mean_over_workers(float(len(label))) == 0:
        with warnings.catch_warnings():  # moving the schedule without a step is the point here, not a slip
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            schedule.step()
        return False, None
    logits = model(batch, sample, point)
    loss = loss_function(logits, label) if len(label) else logits.sum() * 0
    distributed.optimiser_step(loss, optimizer, schedule)
    return True, loss.item() if len(label) else None


def window_loss(losses: list[float]) -> float | None:
    """Mean of the losses every worker had since the last evaluation; None when none had any (every step of
    the window skipped), never NaN."""
    from pix2point.training.runtime import distributed

    count = distributed.mean_over_workers(float(len(losses)))
    return distributed.mean_over_workers(float(sum(losses))) / count if count > 0 else None


def segmentation_loss(model: nn.Module, scenes: list[ScenePoints], spec: BackboneSpec, rng: np.random.Generator,
                      augmentation: PointAugmentation, device: torch.device) -> torch.Tensor:
    """One step's cross-entropy over the labelled points of `scenes` (augmented with `rng`): the batch is
    built on the CPU and moved to `device` in one go."""
    batch, sample, point, label = to_device(scene_batch(scenes, spec, rng, augmentation), device)
    return nn.functional.cross_entropy(model(batch, sample, point), label)


def confusion_matrix(model: nn.Module, scenes_dir: Path, scenes: list[str], spec: BackboneSpec,
                     num_classes: int, device: torch.device = torch.device("cpu")) -> np.ndarray:
    """[K, K] counts of (true, predicted) class over the labelled points of `scenes`, read one at a time;
    the forward passes on `device`."""
    model.eval()
    confusion = np.zeros((num_classes, num_classes), np.int64)
    with torch.inference_mode():
        for scene in scenes:
            batch, sample, point, label = scene_batch([read_points(scenes_dir, scene)], spec, None, PointAugmentation())
            prediction = model(*to_device((batch, sample, point), device)).argmax(1).cpu()
            confusion += np.bincount(label.numpy() * num_classes + prediction.numpy(),
                                     minlength=num_classes ** 2).reshape(num_classes, num_classes)
    model.train()
    return confusion


def train_loop(config: FinetuneConfig) -> None:
    """A worker's loop over `config.runs` (a trainer's queue of runs: training/runtime/trials.py, finetune_loop.py); the
    results travel in the final checkpoint's state, and the stage writes the tables from them."""
    import ray.train

    from pix2point.training.finetuning.finetune_loop import train_runs

    rank = ray.train.get_context().get_world_rank()
    validation = validation_scenes(config.scenes_dir) if rank == 0 else []
    stream = SampleStream.for_rank(rank, config.scenes_per_batch)
    train_runs(config.runs, lambda run, state: start_run(config, run, validation, stream, rank))


def start_run(config: FinetuneConfig, run: RunSpec, validation: list[str], stream: SampleStream,
              rank: int) -> SegmentationRun:
    """Run `run`'s model (its backbone fresh or pretrained) on this worker's device, SGD and cosine schedule."""
    import ray.train.torch

    device = ray.train.torch.get_device()
    backbone = build_backbone(config.backbone)
    if run.init == "pretrain":
        loaded = load_pretrained(backbone, config.pretrained_backbone)
        print(f"run {run.name}: loaded all {loaded} backbone tensors from {config.pretrained_backbone}")
    # On the device before a checkpoint is restored: the optimiser's state then loads onto the parameters' device.
    model = SegmentationModel(backbone, len(config.class_names)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    return SegmentationRun(model, optimizer, schedule, rank, device, run, config.steps, config.eval_every,
                           config.checkpoint_every, config.out, model_path(config.out, run.name), config, validation,
                           stream)


@dataclass
class SegmentationRun(FinetuneRun):
    """A finetune run (finetune_loop.py): an "epoch" of its history is one evaluation, every eval_every steps;
    a step no worker had a labelled point for is skipped and counted in the next record."""

    config: FinetuneConfig
    validation: list[str]  # rank 0's validation scenes; empty on the other ranks
    stream: SampleStream
    best: float = 0.0
    skipped: int = 0  # steps skipped since the last evaluation
    confusion: np.ndarray | None = None  # of the latest evaluation
    loss_function: nn.Module = field(default_factory=nn.CrossEntropyLoss)

    def train_step(self, step: int, model: nn.Module) -> dict[str, float]:
        rng = self.streams(step).numpy
        scenes = [ScenePoints(arrays["xyz"], arrays["rgb"], arrays["label"]) for arrays in
                  self.stream.next(step, self.run.name, self.config.sources[self.run.name].per_rank).samples]
        batch, sample, point, label = to_device(
            scene_batch(scenes, self.config.backbone, rng, self.config.augmentation), self.device)
        stepped, loss = train_step(model, self.optimizer, self.schedule, self.loss_function, batch, sample, point,
                                   label)
        if not stepped:
            self.skipped += 1
            if self.rank == 0:
                from pix2point.training.runtime.progress import send

                send(f"run {self.run.name}: step {step + 1} skipped: no worker's batch has a labelled point")
        return {} if loss is None else {"loss": loss}

    def evaluate(self, done: int, window: list[dict[str, float]], seconds: float) -> Evaluation:
        from pix2point.training.runtime import distributed

        config = self.config
        self.confusion = distributed.on_rank_zero(lambda: confusion_matrix(
            self.model, config.scenes_dir, self.validation, config.backbone, len(config.class_names), self.device))
        scores = segmentation_scores(self.confusion)
        self.best = max(self.best, scores.miou)
        train_loss = window_loss([values["loss"] for values in window if "loss" in values])
        record = EpochRecord(self.run.name, done // config.eval_every, train_loss, scores.miou,
                             scores.mean_class_accuracy, seconds, self.skipped)
        self.skipped = 0
        return Evaluation(record, {**({} if train_loss is None else {"loss": train_loss}), "val_miou": scores.miou},
                          {"val/miou": scores.miou, "val/macc": scores.mean_class_accuracy})

    def carry(self) -> dict:
        return {"best": self.best, "skipped": self.skipped}

    def restore(self, carried: dict) -> None:
        self.best, self.skipped = carried["best"], carried["skipped"]

    def result(self, finished: Finished, scalars: Scalars) -> RunResult:
        run = self.run
        return RunResult(run.name, run.init, run.label_fraction, run.seed, finished.evaluations,
                         segmentation_scores(self.confusion).miou, self.best, self.confusion, run.repeat)
