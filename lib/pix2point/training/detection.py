"""3D-detection finetuning (VoteNet head on a fresh or pretrained Res16UNet), on Ray Train.

As segmentation.py: a trainer trains its queue of the grid's runs one after another (training/trials.py);
the checkpoints carry each finished run's result and history, and the stage writes the tables from them.
Validation runs on rank 0 alone and is sent to the other workers. A step's batch and targets are moved once
to the model's device (the one prepare_model put it on); the head and loss make their tensors there.
"""

from __future__ import annotations

import time
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
from pix2point.training.determinism import step_streams
from pix2point.models.box_predictions import scene_detections
from pix2point.models.votenet import DetectionModel, VoteHeadSpec
from pix2point.training import distributed
from pix2point.training.detection_data import (
    DetectionScene, batch_to, detection_batch, left_out_objects, load_detection_scenes,
)
from pix2point.training.detection_loss import TERMS, detection_loss
from pix2point.training.run_grid import RunSpec
from pix2point.training.label_budget import kept_scenes
from pix2point.training.progress import Progress
from pix2point.training.tracking import Scalars
from pix2point.training.segmentation_data import split_scenes

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
    distributed.train_runs_in_order(config.runs, lambda run, state: train_run(config, run, state, validation, rank))


def training_scenes(config: DetectConfig, run: RunSpec) -> list[DetectionScene]:
    """The run's share of training scenes (chosen as finetune chooses them), those with annotations."""
    kept = kept_scenes(split_scenes(config.scenes_dir, "train"), run.label_fraction, run.seed)
    scenes = load_detection_scenes(config.scenes_dir, kept)
    if not scenes:
        raise ValueError(f"run {run.name}: none of its training scenes {kept} has box annotations")
    return scenes


def build_model(config: DetectConfig, run: RunSpec) -> DetectionModel:
    torch.manual_seed(run.seed)
    backbone = build_backbone(config.backbone)
    if run.init == "pretrain":
        loaded = load_pretrained(backbone, config.pretrained_backbone)
        print(f"run {run.name}: loaded {loaded}/{len(backbone.state_dict())} backbone tensors from {config.pretrained_backbone}")
    return DetectionModel(backbone, config.head)


def train_run(config: DetectConfig, run: RunSpec, state: dict, validation: list[DetectionScene],
              rank: int) -> DetectRunResult:
    """One run; evaluations every eval_every steps append to state["history"], and state["left_out_objects"]
    (scene -> {reason: count}) says which objects of its scenes had no box (io/scannet_boxes.py)."""
    model = build_model(config, run)
    # AdamW as VoteNet (Adam, lr 1e-3, no weight decay there), cosine-annealed as the other stages.
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    # On its device before a checkpoint is restored: the optimiser's state then loads onto the parameters' device.
    ddp_model = ray.train.torch.prepare_model(model)
    device = model_device(model)
    start_step, best, running = 0, 0.0, []
    if (current := distributed.resumed_run(state, run.name)) is not None:
        start_step = distributed.restore_run(current, model, optimizer, schedule)
        best, running = current["best"], current.get("running", [])
    training = training_scenes(config, run)
    state["left_out_objects"] = left_out_objects(training + validation)
    started, scores = time.perf_counter(), None
    console = Progress(f"run {run.name}", config.steps, start_step)
    scalars = Scalars(config.out, run.name, start_step)
    for step in range(start_step, config.steps):
        rng = step_streams(run.seed, rank, step).numpy
        chosen = rng.choice(len(training), size=min(config.scenes_per_batch, len(training)), replace=False)
        batch, seeds, targets = batch_to(device, *detection_batch(
            [training[i] for i in chosen], config.backbone, config.head.num_seeds, rng, config.augment))
        loss, terms = detection_loss(ddp_model(batch, seeds), targets)
        lr = schedule.get_last_lr()[0]  # the rate this step uses
        running.append({"loss": distributed.optimiser_step(loss, optimizer, schedule), **terms})
        scalars.add(step + 1, {"train/loss": running[-1]["loss"], "train/lr": lr,
                               **{f"train/{name}": value for name, value in terms.items()}})
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            scores = distributed.on_rank_zero(lambda: evaluate(model, validation, config))
            best = max(best, scores[0].mean_ap)
            state["history"].append(evaluation_record(run.name, step + 1, running, scores, time.perf_counter() - started))
            running = []
            console.report(step + 1, loss=state["history"][-1].train_loss, val_map25=scores[0].mean_ap)
            scalars.add(step + 1, {"val/map25": scores[0].mean_ap, "val/map50": scores[1].mean_ap,
                                   "val/recall25": scores[0].mean_recall})
        distributed.checkpoint_if_due(state, run.name, step + 1, config.steps, config.checkpoint_every, model,
                                      optimizer, schedule, best=best, running=running)
    scalars.close()
    distributed.save_on_rank_zero(model, model_path(config.out, run.name))
    if scores is None:  # resumed past the last step (a shorter rerun): score the restored model
        scores = distributed.on_rank_zero(lambda: evaluate(model, validation, config))
    evaluations = sum(record.run == run.name for record in state["history"])
    return DetectRunResult(run.name, run.init, run.label_fraction, run.seed, evaluations, start_step,
                           scores[0].mean_ap, scores[1].mean_ap, best, scores[0].average_precision.tolist(),
                           scores[1].average_precision.tolist(), run.repeat)


def evaluation_record(run: str, step: int, running: list[dict[str, float]], scores: tuple[DetectionScores, ...],
                      seconds: float) -> DetectEvaluation:
    """The history row of an evaluation after `step`: the loss and each of its terms averaged over the steps
    since the previous evaluation (`running`, one {"loss", *TERMS} per step) and over workers, and the scores."""
    window = {name: distributed.mean_over_workers(float(np.mean([values[name] for values in running])))
              for name in ("loss", *TERMS)}
    return DetectEvaluation(run, step, window["loss"], scores[0].mean_ap, scores[1].mean_ap, seconds,
                            **{f"loss_{name}": window[name] for name in TERMS}, val_recall25=scores[0].mean_recall)
