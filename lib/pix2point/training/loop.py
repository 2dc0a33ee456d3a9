"""The step loop of a single training run under Ray Train: continue from the latest checkpoint if the run is
being resumed, step, record a history row per step, checkpoint every N steps and at the end.

`StepTraining` and the stages' `step()` import without Ray; Ray and the modules that need it are imported in
`run_steps`, so scripts/gpu_check.sh runs the very same steps on a GPU machine that has no Ray."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from pix2point.training.runtime.determinism import StepStreams, step_streams


@dataclass
class Training:
    """What a worker trains a run with: the model, its optimiser and schedule, and where its random streams come
    from (`seed`, a subclass's). Pretraining (`StepTraining`, `run_steps`) and fine-tuning
    (finetune_loop.FinetuneRun) both build on it."""

    # what forward runs through: run_steps replaces it by its DDP wrapper; finetune_loop keeps it unwrapped
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    rank: int
    device: torch.device
    # DDP by default expects every parameter to get a gradient every step; a model with parameters that
    # some losses leave unused must say so (DDP then searches the graph for them each step).
    has_unused_parameters: ClassVar[bool] = False

    @property
    def seed(self) -> int:
        raise NotImplementedError

    def streams(self, step: int) -> StepStreams:
        """Step `step`'s (0-based) random streams: the same whether or not the run was resumed before it."""
        return step_streams(self.seed, self.rank, step, self.device)


@dataclass
class StepTraining(Training):
    """What a pretraining worker trains with: subclasses add their data and `config` (whose `out` is the artefact
    directory), `seed` and `step`."""

    def step(self, streams: StepStreams) -> tuple[dict[str, float], dict[str, Any]]:
        """One optimiser step drawing its randomness from `streams` only -> (values to average over workers,
        e.g. losses; values kept as rank's own)."""
        raise NotImplementedError

    def optimise(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()


def run_steps(training: StepTraining, steps: int, checkpoint_every: int) -> tuple[torch.nn.Module, list[dict], int]:
    """Train to `steps`; returns (the unwrapped model, the history of every step including those before a
    resume, the step resumed from). Reports {step, loss, resumed_from_step}: the averaged values must hold `loss`.
    The history, resumed part included, also goes into TensorBoard event files under `config.out` (tracking.py)."""
    import ray.train.torch

    from pix2point.training.runtime import distributed
    from pix2point.training.runtime.progress import Progress
    from pix2point.training.runtime.tracking import Scalars

    history, start_step = [], 0
    state = distributed.latest_state(torch.device("cpu"))
    if state is not None:
        training.model.load_state_dict(state["model"])
        training.optimizer.load_state_dict(state["optimizer"])
        training.schedule.load_state_dict(state["schedule"])
        history, start_step = state["history"], state["step"]
    module = training.model
    training.model = ray.train.torch.prepare_model(
        module, parallel_strategy_kwargs={"find_unused_parameters": training.has_unused_parameters})
    started = time.perf_counter()
    name = type(training).__name__.removesuffix("Training").lower()
    console = Progress(name, steps, start_step)
    for step in range(start_step, steps):
        lr = training.schedule.get_last_lr()[0]  # the rate this step uses
        averaged, own = training.step(training.streams(step))
        history.append({"step": step + 1, **{key: distributed.mean_over_workers(value) for key, value in averaged.items()},
                        **own, "lr": lr, "seconds": time.perf_counter() - started,
                        "worker_peak_rss_mb": distributed.peak_rss_mb()})
        if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
            snapshot = {"model": module.state_dict(), "optimizer": training.optimizer.state_dict(),
                        "schedule": training.schedule.state_dict(), "history": history, "step": step + 1}
            distributed.report({"step": step + 1, "loss": history[-1]["loss"], "resumed_from_step": start_step}, snapshot)
            console.report(step + 1, loss=history[-1]["loss"], lr=lr)
    scalars = Scalars(training.config.out, name)
    scalars.add_rows(history)
    scalars.close()
    return module, history, start_step
