"""I2P-MAE's fine-tuning protocol (ZrrSkywalker/I2P-MAE tools/runner_finetune.py, cfgs/fine-tuning/*.yaml):
the Point-M2AE encoder, from scratch or from a pretrain stage's weights, with the reference's classification
head (models/point_m2ae_classifier.py), trained end to end on the objects' training split with AdamW (no decay
on biases, norms and tokens), linear warm-up then cosine decay, gradient-norm clipping and the reference's
augmentation (training/finetuning/object_finetuning_data.py); the test split is scored every `eval_every` epochs and,
after the last epoch, with voting.

A trainer trains its queue of runs one after another (training/runtime/trials.py); its checkpoints hold the run in
progress, and each finished run's result and history. An epoch is enough steps for one pass over the
training split; test scoring and voting run on rank 0 and are sent to the other workers.

Ray is imported by the Ray Train entry points alone: the model and `step_loss` import without it
(scripts/gpu_check.sh runs them on a GPU machine that has no Ray).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.optim.swa_utils import update_bn

from pix2point.io.classify_table import ClassifyEpoch
from pix2point.io.finetune_objects_table import FinetuneObjectsRun, model_path
from pix2point.io.objects_table import Objects, read_objects
from pix2point.models.point_m2ae import PointM2AESpec
from pix2point.models.point_m2ae_classifier import (
    PointM2AEClassifier,
    TokenPooling,
    load_pretrained_encoder,
    smoothed_cross_entropy,
)
from pix2point.training.finetuning.classification import epoch_steps
from pix2point.training.runtime.determinism import epoch_rng
from pix2point.training.finetuning.finetune_loop import Evaluation, FinetuneRun, Finished
from pix2point.training.finetuning.object_data import epoch_order
from pix2point.training.finetuning.object_finetuning_data import (
    CloudAugmentation,
    evaluation_clouds,
    fps_pools,
    pool_size,
    training_clouds,
    vote_copies,
)
from pix2point.training.schedules import warmup_cosine
from pix2point.training.weight_decay import weight_decay_groups

if TYPE_CHECKING:
    from pix2point.training.runtime.tracking import Scalars

SCRATCH = "scratch"
VOTE_STREAM = 7_001  # key of the voting draws' stream, apart from every step's and epoch's
BATCHNORM_STREAM = 7_002  # key of the dropout / drop-path draws while BatchNorm statistics are re-estimated


@dataclass(frozen=True)
class FinetuneObjectsRunSpec:
    name: str
    init: str  # scratch, or the pretrain input whose encoder the run starts from
    seed: int
    repeat: int = 0  # > 0: a same-seed rerun of the run `name` minus its "-repeat<k>", to measure drift


@dataclass(frozen=True)
class Voting:
    votes: int  # copies per test object; 0: no voting
    scale_range: tuple[float, float] = (2 / 3, 3 / 2)
    translate: float = 0.2


@dataclass(frozen=True)
class FinetuneObjectsConfig:
    objects_dir: Path
    encoders: dict[str, Path]  # init -> the pretrain artefact holding encoder.pt + encoder.json
    out: Path
    spec: PointM2AESpec  # the pretrained encoders' spec, with the fine-tuning's group sizes
    class_names: tuple[str, ...]
    runs: tuple[FinetuneObjectsRunSpec, ...]
    pooling: TokenPooling
    local_radius: tuple[float, ...]
    drop_path_rate: float
    label_smoothing: float
    points: int  # sampled per object and step
    epochs: int
    batch_size: int  # objects per step and worker
    learning_rate: float
    weight_decay: float
    warmup_epochs: int
    grad_clip: float  # max gradient L2 norm; 0: off
    augmentation: CloudAugmentation
    voting: Voting
    eval_every: int  # epochs
    checkpoint_every: int  # steps
    save_models: bool
    recalibrate_batchnorm: bool = False  # re-estimate BatchNorm statistics on the training split before scoring


def train_loop(config: FinetuneObjectsConfig) -> None:
    """A worker's loop over `config.runs` (a trainer's queue of runs: training/runtime/trials.py, finetune_loop.py)."""
    import ray.train

    from pix2point.training.finetuning.finetune_loop import train_runs

    context = ray.train.get_context()
    rank, workers = context.get_world_rank(), context.get_world_size()
    train, test = read_objects(config.objects_dir, "train"), read_objects(config.objects_dir, "test")
    steps = epoch_steps(len(train.labels), config.batch_size, workers)
    pools = fps_pools(train.points, pool_size(config.points, train.points.shape[1]))
    train_runs(config.runs, lambda run, state: start_run(config, run, train, pools, test, steps, rank))


def build_model(config: FinetuneObjectsConfig, init: str) -> PointM2AEClassifier:
    model = PointM2AEClassifier(config.spec, len(config.class_names), config.pooling, config.local_radius,
                                config.drop_path_rate)
    if init != SCRATCH:
        load_pretrained_encoder(model, config.encoders[init])
    return model


def start_run(config: FinetuneObjectsConfig, run: FinetuneObjectsRunSpec, train: Objects, pools: np.ndarray,
              test: Objects, steps_per_epoch: int, rank: int) -> ObjectFinetuningRun:
    """Run `run`'s classifier on this worker's device, AdamW (no decay on biases, norms and tokens) and a
    warm-up-then-cosine schedule over every epoch's steps."""
    import ray.train.torch

    device = ray.train.torch.get_device()
    model = build_model(config, run.init).to(device)
    optimizer = torch.optim.AdamW(weight_decay_groups(model, config.weight_decay), lr=config.learning_rate)
    steps = config.epochs * steps_per_epoch
    schedule = warmup_cosine(optimizer, steps, config.warmup_epochs * steps_per_epoch)
    return ObjectFinetuningRun(model, optimizer, schedule, rank, device, run, steps,
                               config.eval_every * steps_per_epoch, config.checkpoint_every, config.out,
                               model_path(config.out, run.name) if config.save_models else None, config, train,
                               pools, test, steps_per_epoch,
                               confusion=np.zeros((len(config.class_names),) * 2, np.int64))


@dataclass
class ObjectFinetuningRun(FinetuneRun):
    """A finetune_objects run (finetune_loop.py): each epoch is a fresh order of the training split; the test
    split is scored every `config.eval_every` epochs and after the last, then once more with voting."""

    config: FinetuneObjectsConfig
    train: Objects
    pools: np.ndarray  # the training objects' FPS pools (fps_pools)
    test: Objects
    steps_per_epoch: int
    confusion: np.ndarray  # of the latest evaluation
    best: float = 0.0
    best_epoch: int = 0
    order: tuple[int, np.ndarray] | None = None  # (epoch, its order of the training objects)

    def train_step(self, step: int, model: torch.nn.Module) -> dict[str, float]:
        from pix2point.training.runtime.distributed import optimiser_step

        config, epoch = self.config, step // self.steps_per_epoch
        if self.order is None or self.order[0] != epoch:
            self.order = epoch, epoch_order(len(self.train.labels), self.steps_per_epoch * config.batch_size,
                                            epoch_rng(self.run.seed, self.rank, epoch))
        in_epoch = step - epoch * self.steps_per_epoch
        batch = np.sort(self.order[1][in_epoch * config.batch_size:(in_epoch + 1) * config.batch_size])
        streams = self.streams(step)
        clouds = training_clouds(self.train.points[batch], self.pools[batch], config.points, streams.numpy,
                                 config.augmentation)
        labels = torch.from_numpy(self.train.labels[batch].astype(np.int64)).to(self.device)
        loss = step_loss(model, clouds.to(self.device), labels, config.label_smoothing)
        return {"loss": optimiser_step(loss, self.optimizer, self.schedule, config.grad_clip)}

    def evaluate(self, done: int, window: list[dict[str, float]], seconds: float) -> Evaluation:
        from pix2point.training.runtime import distributed

        config, epoch = self.config, done // self.steps_per_epoch  # 1-based: the epoch just finished
        if config.recalibrate_batchnorm:
            key = np.random.SeedSequence([self.run.seed, BATCHNORM_STREAM, epoch - 1]).generate_state(1)[0]
            distributed.on_rank_zero(lambda: recalibrate_batchnorm(
                self.model, evaluation_clouds(self.train.points, config.points), config.batch_size, self.device,
                int(key)))
        self.confusion = distributed.on_rank_zero(lambda: confusion_matrix(self.test.labels, predict(
            self.model, evaluation_clouds(self.test.points, config.points), config.batch_size, self.device
        ).argmax(1), len(config.class_names)))
        accuracy = float(np.trace(self.confusion) / self.confusion.sum())
        if accuracy > self.best:
            self.best, self.best_epoch = accuracy, epoch
        record = ClassifyEpoch(self.run.name, epoch, done, distributed.mean_over_workers(
            float(np.mean([values["loss"] for values in window]))), accuracy, seconds)
        return Evaluation(record, {"epoch": epoch, "loss": record.train_loss, "test_accuracy": accuracy},
                          {"test/accuracy": accuracy})

    def carry(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def restore(self, carried: dict) -> None:
        self.best, self.best_epoch = carried["best"], carried["best_epoch"]

    def result(self, finished: Finished, scalars: Scalars) -> FinetuneObjectsRun:
        from pix2point.training.runtime import distributed

        run, config = self.run, self.config
        vote_accuracy = distributed.on_rank_zero(lambda: voting_accuracy(self.model, self.test, config, run.seed,
                                                                         self.device))
        if vote_accuracy is not None:
            scalars.add(finished.step, {"test/vote_accuracy": vote_accuracy})
        return FinetuneObjectsRun(run.name, run.init, run.seed, run.repeat, len(self.train.labels), config.epochs,
                                  float(np.trace(self.confusion) / self.confusion.sum()), self.best, self.best_epoch,
                                  vote_accuracy, config.voting.votes, finished.seconds, self.confusion)


def step_loss(model: torch.nn.Module, clouds: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """The label-smoothed cross-entropy of [B, points, 3] `clouds` against [B] int64 `labels`, both already on
    the model's device (moved once per step by the caller)."""
    return smoothed_cross_entropy(model(clouds), labels, label_smoothing)


def recalibrate_batchnorm(model: torch.nn.Module, clouds: np.ndarray, batch_size: int, device: torch.device,
                          seed: int) -> None:
    """Re-estimate every BatchNorm's running mean and variance as the plain average over `clouds` [M, n, 3]
    ("precise BN", Wu & Johnson 2021; torch.optim.swa_utils.update_bn), `seed` seeding the dropout and
    drop-path draws of those train-mode passes. Why: a running average with momentum 0.1 keeps 0.9^S of its
    initial variance 1 after S steps (2e-4 after 80), which dwarfs the ~1e-5 variance a freshly initialised
    token embedding produces (weights of std 0.02 on coordinates of ~0.1), so a short from-scratch run's
    eval-mode features collapse. The reference's ~100k steps never meet this; pretrained weights bring
    converged statistics. Batches of one object are left out (BatchNorm cannot train on them)."""
    torch.manual_seed(seed)
    chunks = np.array_split(np.arange(len(clouds)), max(1, -(-len(clouds) // batch_size)))
    update_bn([torch.tensor(clouds[rows]) for rows in chunks if len(rows) > 1], model, device)


def predict(model: torch.nn.Module, clouds: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    """[M, n, 3] clouds -> [M, K] float32 logits of `model` in eval mode (restored to train mode after)."""
    model.eval()
    with torch.inference_mode():
        logits = [model(torch.tensor(clouds[start:start + batch_size]).to(device)).cpu()
                  for start in range(0, len(clouds), batch_size)]
    model.train()
    return torch.cat(logits).numpy()


def vote_logits(model: torch.nn.Module, clouds: np.ndarray, points: int, voting: Voting, rng: np.random.Generator,
                batch_size: int, device: torch.device) -> np.ndarray:
    """[M, N, 3] test objects -> [M, K]: the mean of the logits of `voting.votes` scaled, shifted random copies
    of each (the reference's validate_vote)."""
    pools = fps_pools(clouds, pool_size(points, clouds.shape[1]))
    copies = (vote_copies(clouds, pools, points, rng, voting.scale_range, voting.translate) for _ in range(voting.votes))
    return np.mean([predict(model, copy, batch_size, device) for copy in copies], axis=0)


def voting_accuracy(model: torch.nn.Module, test: Objects, config: FinetuneObjectsConfig, seed: int,
                    device: torch.device) -> float | None:
    """Test accuracy with voting, drawn from a stream of (seed, VOTE_STREAM) alone; None with 0 votes."""
    if config.voting.votes == 0:
        return None
    rng = np.random.default_rng([seed, VOTE_STREAM])
    logits = vote_logits(model, test.points, config.points, config.voting, rng, config.batch_size, device)
    return float(np.mean(logits.argmax(1) == test.labels))


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """[K, K] int64 counts of (true, predicted) class."""
    flat = truth.astype(np.int64) * num_classes + predicted.astype(np.int64)
    return np.bincount(flat, minlength=num_classes ** 2).reshape(num_classes, num_classes)
