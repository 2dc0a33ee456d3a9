"""3D-detection finetuning (VoteNet head on a fresh or pretrained Res16UNet), on Ray Train.

As segmentation.py: a trainer trains its queue of the grid's runs one after another (training/runtime/trials.py) in
the fine-tuning loop (finetune_loop.py); the checkpoints carry each finished run's result and history, and the
stage writes the tables from them.
Validation runs on rank 0 alone and is sent to the other workers. A step's batch and targets are moved once
to the model's device (the one prepare_model put it on); the head and loss make their tensors there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import ray.train
import ray.train.torch
from pix2point.evaluation.detection_metrics import DetectionScores, detection_scores
from pix2point.geometry.boxes import Detections
from pix2point.io.detect_table import DetectEvaluation, DetectRunResult
from pix2point.io.finetune_table import model_path
from pix2point.models.backbone import BackboneSpec, build_backbone, load_pretrained
from pix2point.models.box_predictions import scene_detections
from pix2point.models.votenet import DetectionModel, VoteHeadSpec
from pix2point.training.runtime import distributed
from pix2point.training.finetuning.detection_data import (
    DetectionScene, batch_to, detection_batch, left_out_objects, load_detection_scenes,
)
from pix2point.training.finetuning.detection_loss import TERMS, detection_loss
from pix2point.training.finetuning.finetune_loop import Evaluation, FinetuneRun, Finished, train_runs
from pix2point.training.runtime.run_grid import RunSpec
from pix2point.training.finetuning.label_budget import kept_scenes
from pix2point.training.runtime.tracking import Scalars
from pix2point.training.finetuning.segmentation_data import split_scenes

EVALUATION_SEED = 0  # seeds of validation scenes are drawn with this, the same for every run and evaluation


@dataclass(frozen=True)
class DetectConfig:
    scenes_dir: Path
    pretrained_backbone: Path | None  # backbone.pt of the pretrain artefact
    out: Path
    backbone: BackboneSpec
    head: VoteHeadSpec
    class_names: tuple[str, ...]
    runs: tuple[RunSpec, ...]
    steps: int  # optimiser steps per run, whatever its label fraction (equal compute)
    eval_every: int
    scenes_per_batch: int
    learning_rate: float
    weight_decay: float
    augment: bool
    checkpoint_every: int


def validation_detections(model: DetectionModel, scenes: list[DetectionScene], config: DetectConfig) -> tuple[list, list]:
    """(predicted, ground-truth) Detections of each validation scene, the model run on its own device."""
    model.eval()
    device = model_device(model)
    rng = np.random.default_rng(EVALUATION_SEED)
    predictions, truths = [], []
    with torch.inference_mode():
        for scene in scenes:
            batch, seeds, _ = batch_to(device, *detection_batch([scene], config.backbone, config.head.num_seeds, rng,
                                                                augment=False))
            out = model(batch, seeds)
            predictions.append(scene_detections(out.boxes, out.objectness, out.class_logits))
            truths.append(Detections(scene.boxes.boxes, scene.boxes.classes, np.ones(len(scene.boxes.classes))))
    model.train()
    return predictions, truths


def evaluate(model: DetectionModel, scenes: list[DetectionScene], config: DetectConfig
             ) -> tuple[DetectionScores, DetectionScores]:
    """(scores at IoU 0.25, scores at IoU 0.5) on the validation scenes."""
    predictions, truths = validation_detections(model, scenes, config)
    num_classes = len(config.class_names)
    return tuple(detection_scores(predictions, truths, num_classes, threshold) for threshold in (0.25, 0.5))


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's parameters: where a step's batch goes and its tensors are made."""
    return next(model.parameters()).device


def train_loop(config: DetectConfig) -> None:
    rank = ray.train.get_context().get_world_rank()
    validation = load_detection_scenes(config.scenes_dir, split_scenes(config.scenes_dir, "val")) if rank == 0 else []
    if rank == 0 and not validation:
        raise ValueError(f"no validation scene of {config.scenes_dir} has box annotations")
    train_runs(config.runs, lambda run, state: start_run(config, run, state, validation, rank))


def training_scenes(config: DetectConfig, run: RunSpec) -> list[DetectionScene]:
    """The run's share of training scenes (chosen as finetune chooses them), those with annotations."""
    kept = kept_scenes(split_scenes(config.scenes_dir, "train"), run.label_fraction, run.seed)
    scenes = load_detection_scenes(config.scenes_dir, kept)
    if not scenes:
        raise ValueError(f"run {run.name}: none of its training scenes {kept} has box annotations")
    return scenes


def build_model(config: DetectConfig, run: RunSpec) -> DetectionModel:
    backbone = build_backbone(config.backbone)
    if run.init == "pretrain":
        loaded = load_pretrained(backbone, config.pretrained_backbone)
        print(f"run {run.name}: loaded {loaded}/{len(backbone.state_dict())} backbone tensors from {config.pretrained_backbone}")
    return DetectionModel(backbone, config.head)


def start_run(config: DetectConfig, run: RunSpec, state: dict, validation: list[DetectionScene],
              rank: int) -> DetectionRun:
    """Run `run`'s model on this worker's device, AdamW and cosine schedule, and its training scenes;
    state["run_extras"]["left_out_objects"] (scene -> {reason: count}) says which objects of its scenes had no box
    (io/scannet_boxes.py); the run's record carries it (distributed.run_state)."""
    device = ray.train.torch.get_device()
    # On its device before a checkpoint is restored: the optimiser's state then loads onto the parameters' device.
    model = build_model(config, run).to(device)
    # AdamW as VoteNet (Adam, lr 1e-3, no weight decay there), cosine-annealed as the other stages.
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    training = training_scenes(config, run)
    state["run_extras"] = {"left_out_objects": left_out_objects(training + validation)}
    return DetectionRun(model, optimizer, schedule, rank, device, run, config.steps, config.eval_every,
                        config.checkpoint_every, config.out, model_path(config.out, run.name), config, training,
                        validation)


@dataclass
class DetectionRun(FinetuneRun):
    """A detect run (finetune_loop.py): evaluations every eval_every steps score mAP at IoU 0.25 and 0.5."""

    config: DetectConfig
    training: list[DetectionScene]
    validation: list[DetectionScene]  # rank 0's; empty on the other ranks
    best: float = 0.0
    scores: tuple[DetectionScores, DetectionScores] | None = None  # of the latest evaluation

    def train_step(self, step: int, model: torch.nn.Module) -> dict[str, float]:
        rng = self.streams(step).numpy
        chosen = rng.choice(len(self.training), size=min(self.config.scenes_per_batch, len(self.training)),
                            replace=False)
        batch, seeds, targets = batch_to(self.device, *detection_batch(
            [self.training[i] for i in chosen], self.config.backbone, self.config.head.num_seeds, rng,
            self.config.augment))
        loss, terms = detection_loss(model(batch, seeds), targets)
        return {"loss": distributed.optimiser_step(loss, self.optimizer, self.schedule), **terms}

    def evaluate(self, done: int, window: list[dict[str, float]], seconds: float) -> Evaluation:
        self.scores = distributed.on_rank_zero(lambda: evaluate(self.model, self.validation, self.config))
        self.best = max(self.best, self.scores[0].mean_ap)
        record = evaluation_record(self.run.name, done, window, self.scores, seconds)
        return Evaluation(record, {"loss": record.train_loss, "val_map25": self.scores[0].mean_ap},
                          {"val/map25": self.scores[0].mean_ap, "val/map50": self.scores[1].mean_ap,
                           "val/recall25": self.scores[0].mean_recall})

    def carry(self) -> dict:
        return {"best": self.best}

    def restore(self, carried: dict) -> None:
        self.best = carried["best"]

    def result(self, finished: Finished, scalars: Scalars) -> DetectRunResult:
        if self.scores is None:  # resumed past the last step (a shorter rerun): score the restored model
            self.scores = distributed.on_rank_zero(lambda: evaluate(self.model, self.validation, self.config))
        run, scores = self.run, self.scores
        return DetectRunResult(run.name, run.init, run.label_fraction, run.seed, finished.evaluations,
                               finished.resumed_from, scores[0].mean_ap, scores[1].mean_ap, self.best,
                               scores[0].average_precision.tolist(), scores[1].average_precision.tolist(), run.repeat)


def evaluation_record(run: str, step: int, running: list[dict[str, float]], scores: tuple[DetectionScores, ...],
                      seconds: float) -> DetectEvaluation:
    """The history row of an evaluation after `step`: the loss and each of its terms averaged over the steps
    since the previous evaluation (`running`, one {"loss", *TERMS} per step) and over workers, and the scores."""
    window = {name: distributed.mean_over_workers(float(np.mean([values[name] for values in running])))
              for name in ("loss", *TERMS)}
    return DetectEvaluation(run, step, window["loss"], scores[0].mean_ap, scores[1].mean_ap, seconds,
                            **{f"loss_{name}": window[name] for name in TERMS}, val_recall25=scores[0].mean_recall)
