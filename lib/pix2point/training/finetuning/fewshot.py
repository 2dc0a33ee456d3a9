"""One few-shot episode trained and scored (Point-MAE's protocol, main.py --way --shot --fold): a fresh network
for the episode's N classes is fine-tuned end to end on its N x K support objects and scored on its query
objects after the last epoch.

An epoch is floor(N x K / batch_size) steps (at least one) of distinct support objects, as the reference's
training loader with drop_last; an episode trains `epochs` of them, or `steps` steps when that is set. Each step's randomness (augmentation, dropout, stochastic depth) comes from
(episode seed, step) and each epoch's order from (episode seed, epoch) (training/runtime/determinism.py); the network's
initial weights (head, and a scratch encoder or twin) from the episode seed, so every network of one family
starts an episode from the same head.

`run_episode` is the Ray task: it writes the episode's record into the stage's scratch directory before it
returns, so a killed stage keeps every finished episode.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from pix2point.io.fewshot_table import EpisodeRecord
from pix2point.io.objects_table import Objects
from pix2point.training.runtime.determinism import configure, epoch_rng, step_streams
from pix2point.training.runtime.distributed import optimiser_step
from pix2point.training.finetuning.episodes import Episode, episode_name
from pix2point.training.finetuning.fewshot_recipes import Recipe
from pix2point.training.finetuning.object_data import epoch_order


@dataclass(frozen=True)
class EpisodeJob:
    network: str
    episode: Episode
    seed: int  # the episode's training seed (weights, order, augmentation)


@dataclass(frozen=True)
class EpisodeSettings:
    recipes: dict[str, Recipe]  # network name -> how it trains
    class_names: tuple[str, ...]
    epochs: int  # each floor(support / batch_size) steps, as the reference's loader with drop_last
    steps: int | None  # per episode whatever its support size; None: epochs x steps per epoch
    batch_size: int  # support objects per step, at most the support set
    deterministic: bool
    recalibrate_batchnorm: bool  # re-estimate BatchNorm statistics on the support objects before scoring
    records_dir: Path  # one JSON record per finished episode (record_path)
    use_gpu: bool = False  # train on the task's GPU (the stage asks Ray for one per task: gpus_per_episode)


def run_episode(job: EpisodeJob, *, train: Objects, test: Objects, settings: EpisodeSettings) -> EpisodeRecord:
    """Train `job.network` on the episode's support objects of `train`, score its query objects of `test`,
    write the record (whole or not at all) and return it."""
    configure(settings.deterministic)
    episode = job.episode
    started = time.perf_counter()
    accuracy, losses, steps = train_and_score(settings.recipes[job.network], episode, train.points[episode.support],
                                              test.points[episode.query], settings, job.seed,
                                              episode_device(settings.use_gpu))
    record = EpisodeRecord(job.network, episode.ways, episode.shots, episode.fold, accuracy, len(episode.support),
                           len(episode.query), steps, float(np.mean(losses)), time.perf_counter() - started,
                           [settings.class_names[label] for label in episode.classes])
    write_record(settings.records_dir, record)
    return record


def episode_device(use_gpu: bool) -> torch.device:
    """The task's GPU with `use_gpu`, else the CPU; RuntimeError when a GPU is asked for and torch sees none
    (never a silent CPU run)."""
    if not use_gpu:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("fewshot: gpus_per_episode > 0 but torch sees no CUDA device in this task "
                           "(a CPU build of torch, or Ray gave the task no GPU)")
    return torch.device("cuda")


def train_and_score(recipe: Recipe, episode: Episode, support: np.ndarray, query: np.ndarray,
                    settings: EpisodeSettings, seed: int,
                    device: torch.device = torch.device("cpu")) -> tuple[float, list[float], int]:
    """[S, N, 3] support and [Q, N, 3] query clouds -> (query accuracy, last epoch's losses, steps trained),
    the network on `device` (batches are drawn on the CPU and moved once per step)."""
    torch.manual_seed(seed)
    model = recipe.build(episode.ways).to(device)
    batch_size = min(settings.batch_size, len(support))
    steps_per_epoch = max(1, len(support) // batch_size)
    steps = settings.steps or settings.epochs * steps_per_epoch
    optimizer, schedule = recipe.optimisation(model, steps, settings.epochs)
    labels = torch.tensor(episode.support_labels).to(device)
    model.train()
    losses: list[float] = []
    for step in range(steps):
        epoch, in_epoch = divmod(step, steps_per_epoch)
        if in_epoch == 0:
            order, losses = epoch_order(len(support), steps_per_epoch * batch_size, epoch_rng(seed, 0, epoch)), []
        batch = order[in_epoch * batch_size:(in_epoch + 1) * batch_size]
        loss = recipe.loss(model(recipe.training_batch(support[batch], step_streams(seed, 0, step).numpy, device)),
                           labels[torch.from_numpy(batch).to(device)])
        losses.append(optimiser_step(loss, optimizer, schedule, recipe.grad_clip))
    if settings.recalibrate_batchnorm:
        recalibrate_batchnorm(model, recipe, support, batch_size, seed, device)
    predicted = predict(model, recipe, query, batch_size, device)
    return float(np.mean(predicted == episode.query_labels)), losses, steps


def recalibrate_batchnorm(model: torch.nn.Module, recipe: Recipe, support: np.ndarray, batch_size: int,
                          seed: int, device: torch.device = torch.device("cpu")) -> None:
    """Re-estimate the BatchNorm statistics as plain averages over the [S, N, 3] support clouds ("precise BN",
    torch.optim.swa_utils.update_bn; why: training/finetuning/object_finetuning.recalibrate_batchnorm), unless some
    BatchNorm is frozen (an Image2Point FIP mode keeps the inflated statistics). Not in the reference."""
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.optim.swa_utils import update_bn

    norms = [module for module in model.modules() if isinstance(module, _BatchNorm)]
    if any(not parameter.requires_grad for module in norms for parameter in module.parameters()):
        return
    torch.manual_seed(seed)
    chunks = np.array_split(np.arange(len(support)), max(1, -(-len(support) // batch_size)))
    update_bn([recipe.evaluation_batch(support[rows], device) for rows in chunks if len(rows) > 1], model)


def predict(model: torch.nn.Module, recipe: Recipe, clouds: np.ndarray, batch_size: int,
            device: torch.device = torch.device("cpu")) -> np.ndarray:
    """[Q, N, 3] clouds -> [Q] int64 predicted episode labels, the model (on `device`) in eval mode."""
    model.eval()
    with torch.inference_mode():
        logits = [model(recipe.evaluation_batch(clouds[start:start + batch_size], device))
                  for start in range(0, len(clouds), batch_size)]
    return torch.cat(logits).argmax(1).cpu().numpy()


def record_path(records_dir: Path, network: str, ways: int, shots: int, fold: int) -> Path:
    return records_dir / network / f"{episode_name(ways, shots, fold)}.json"


def write_record(records_dir: Path, record: EpisodeRecord) -> None:
    path = record_path(records_dir, record.network, record.ways, record.shots, record.fold)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(asdict(record)))
    partial.rename(path)  # a record is there whole or not at all


def read_record(path: Path) -> EpisodeRecord | None:
    return EpisodeRecord(**json.loads(path.read_text())) if path.is_file() else None
