"""Object classification with a sparse twin of a 2D network (scratch or inflated, under a FIP mode), on Ray Train.

A trainer trains its runs one after another (training/runtime/trials.py); its checkpoints hold the run in progress,
and each finished run's result and history. The run's training objects (its few-shot subset) stream to the workers, a row group
per object (training/runtime/sample_stream.py, training/object_samples.py), distinct objects in every step's batch.
The test split is scored on rank 0 only, read a row group at a time. An epoch is the same number of
optimiser steps for every run (enough for one pass over the whole training split), so runs differ in the
data and the frozen parts only, never in the number of steps; a subset smaller than a batch trains on all
of it each step. The test split is scored after every epoch, which is what the epochs-to-target figure is
read from.

Ray is imported by the Ray Train entry points (train_loop, start_run) alone: the model and `classify_loss`
import without it (scripts/gpu_check.sh runs them on a GPU machine that has no Ray).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from pix2point.io.classify_table import ClassifyEpoch, ClassifyRun, model_path
from pix2point.io.objects_table import iter_objects, split_labels, split_rows
from pix2point.models.fip import FipMode, FipSummary, apply_fip, trainable_parameters
from pix2point.models.object_classifier import ClassifierSpec, Init, build_classifier
from pix2point.training.finetuning.finetune_loop import Evaluation, FinetuneRun, Finished
from pix2point.training.finetuning.object_data import ObjectAugmentation, augment_object, few_shot_indices, object_batch
from pix2point.training.object_samples import ObjectSource
from pix2point.training.runtime.sample_stream import Arrays, SampleStream
from pix2point.models.voxelize import Rounding

if TYPE_CHECKING:
    from pix2point.training.runtime.tracking import Scalars


@dataclass(frozen=True)
class ClassifyRunSpec:
    name: str
    init: Init
    fip: FipMode
    shots: int | None
    seed: int
    repeat: int = 0  # > 0: a same-seed rerun of the run `name` minus its "-repeat<k>", to measure drift


@dataclass(frozen=True)
class ClassifyConfig:
    objects_dir: Path
    out: Path
    classifier: ClassifierSpec
    class_names: tuple[str, ...]
    runs: tuple[ClassifyRunSpec, ...]
    epochs: int
    batch_size: int  # objects per step and worker
    voxel_size: float  # in object radii (objects are normalised into the unit sphere)
    voxel_rounding: Rounding
    learning_rate: float  # peak of the cosine schedule
    momentum: float
    weight_decay: float
    augmentation: ObjectAugmentation
    checkpoint_every: int  # steps
    save_models: bool
    steps_per_epoch: int = 1  # epoch_steps of the whole training split
    # Each run's training objects (run_source), by run name: set by the stage for a trainer's runs
    sources: dict[str, ObjectSource] = field(default_factory=dict)
    io_learning_rate: float | None = None  # FIP io runs' peak learning rate; None: `learning_rate`

    def learning_rate_for(self, fip: FipMode) -> float:
        """The peak learning rate of a run under `fip`: io's own when set (issue 22), else the common one."""
        return self.io_learning_rate if fip == "io" and self.io_learning_rate is not None else self.learning_rate


def epoch_steps(train_objects: int, batch_size: int, workers: int) -> int:
    """Optimiser steps that make one pass over `train_objects` with every worker taking `batch_size`."""
    return max(1, math.ceil(train_objects / (batch_size * workers)))


def run_source(objects_dir: Path, shots: int | None, seed: int, batch_size: int, workers: int) -> ObjectSource:
    """A run's training objects: `shots` per class drawn with `seed` (all for None), `batch_size` per worker
    and step, or all of them when fewer. Reads the split and label columns only (on the driver)."""
    rows = split_rows(objects_dir, "train")[few_shot_indices(split_labels(objects_dir, "train"), shots, seed)]
    return ObjectSource(objects_dir, rows, seed, min(batch_size, len(rows)), workers)


def train_loop(config: ClassifyConfig) -> None:
    """A worker's loop over `config.runs` (a trainer's queue of runs, each with its source: training/runtime/trials.py,
    finetune_loop.py); the results travel in the final checkpoint's state, and the stage writes the tables from them."""
    import ray.train

    from pix2point.training.finetuning.finetune_loop import train_runs

    rank = ray.train.get_context().get_world_rank()
    stream = SampleStream.for_rank(rank, config.batch_size)
    train_runs(config.runs, lambda run, state: start_run(config, run, stream, rank))


def start_run(config: ClassifyConfig, run: ClassifyRunSpec, stream: SampleStream, rank: int) -> ClassificationRun:
    """Run `run`'s classifier (scratch or inflated, its FIP mode applied) on this worker's device, SGD over its
    trainable parameters and a cosine schedule over every epoch's steps."""
    import ray.train.torch

    device = ray.train.torch.get_device()
    model, inflation = build_classifier(config.classifier, run.init)
    # On the device before a checkpoint is restored: the optimiser's state then loads onto the parameters' device.
    model.to(device)
    fip = apply_fip(model, model.trunk, run.fip)
    if rank == 0:
        print(f"run {run.name}: {inflation.summary() if inflation else 'random weights'}; "
              f"{fip.trainable} trainable, {fip.frozen} frozen parameters")
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=config.learning_rate_for(run.fip),
                                momentum=config.momentum, weight_decay=config.weight_decay)
    steps = config.epochs * config.steps_per_epoch
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    return ClassificationRun(model, optimizer, schedule, rank, device, run, steps, config.steps_per_epoch,
                               config.checkpoint_every, config.out,
                               model_path(config.out, run.name) if config.save_models else None, config, stream, fip)


@dataclass
class ClassificationRun(FinetuneRun):
    """A classify run (finetune_loop.py): the test split is scored after every epoch (`eval_every` is an
    epoch's steps)."""

    config: ClassifyConfig
    stream: SampleStream
    fip: FipSummary
    best: float = 0.0
    accuracy: float = float("nan")  # of the latest evaluation
    confusion: np.ndarray | None = None

    def train_step(self, step: int, model: nn.Module) -> dict[str, float]:
        from pix2point.training.runtime.distributed import optimiser_step

        samples = self.stream.next(step, self.run.name, self.config.sources[self.run.name].per_rank).samples
        loss = classify_loss(model, samples, self.config, self.streams(step).numpy, self.device)
        return {"loss": optimiser_step(loss, self.optimizer, self.schedule)}

    def evaluate(self, done: int, window: list[dict[str, float]], seconds: float) -> Evaluation:
        from pix2point.training.runtime import distributed

        self.confusion = distributed.on_rank_zero(lambda: evaluate_confusion(self.model, self.config, self.device))
        self.accuracy = float(np.trace(self.confusion) / self.confusion.sum())
        self.best = max(self.best, self.accuracy)
        losses = [values["loss"] for values in window]
        record = ClassifyEpoch(self.run.name, done // self.eval_every, done, distributed.mean_over_workers(
            float(np.mean(losses)) if losses else float("nan")), self.accuracy, seconds)
        return Evaluation(record, {"epoch": record.epoch, "loss": record.train_loss, "test_accuracy": self.accuracy},
                          {"test/accuracy": self.accuracy})

    def carry(self) -> dict:
        return {"best": self.best}

    def restore(self, carried: dict) -> None:
        self.best = carried["best"]

    def result(self, finished: Finished, scalars: Scalars) -> ClassifyRun:
        run, config = self.run, self.config
        return ClassifyRun(run.name, run.init, run.fip, run.shots, run.seed, len(config.sources[run.name]),
                           self.fip.trainable, self.fip.frozen, config.epochs, self.accuracy, self.best,
                           finished.seconds, self.confusion, run.repeat)


def classify_loss(model: nn.Module, samples: list[Arrays], config: ClassifyConfig, rng: np.random.Generator,
                  device: torch.device) -> torch.Tensor:
    """Cross-entropy of one step's streamed objects ({"points": [N, 3] float32, "label": [] int16} each),
    augmented with `rng` on the CPU and voxelised onto `device`."""
    points = [augment_object(sample["points"], rng, config.augmentation) for sample in samples]
    labels = torch.tensor([int(sample["label"]) for sample in samples], dtype=torch.int64).to(device)
    return nn.functional.cross_entropy(model(object_batch(points, config.voxel_size, config.voxel_rounding, device)),
                                       labels)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, samples: list[Arrays], config: ClassifyConfig,
               rng: np.random.Generator, device: torch.device = torch.device("cpu")) -> float:
    """One optimiser step on streamed objects (`classify_loss`); returns the loss."""
    loss = classify_loss(model, samples, config, rng, device)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def evaluate_confusion(model: nn.Module, config: ClassifyConfig, device: torch.device = torch.device("cpu")) -> np.ndarray:
    """[K, K] counts of (true, predicted) class over the test split, without augmentation, read a row group
    at a time (io/objects_table.iter_objects), batch_size objects a batch, the forward passes on `device`."""
    num_classes = len(config.class_names)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    model.eval()
    with torch.inference_mode():
        for points, labels in iter_objects(config.objects_dir, "test", config.batch_size):
            predicted = model(object_batch(list(points), config.voxel_size, config.voxel_rounding, device)
                              ).argmax(1).cpu().numpy()
            truth = labels.astype(np.int64)
            confusion += np.bincount(truth * num_classes + predicted, minlength=num_classes ** 2).reshape(
                num_classes, num_classes)
    model.train()
    return confusion
