"""The fine-tuning loop every grid stage's runs train with (segmentation.py, detection.py, classification.py,
object_finetuning.py), as loop.py's `run_steps` is pretraining's: continue the run from its checkpoint if the
resumed checkpoint was taken inside it, step, log each step to TensorBoard, evaluate every `eval_every` steps
and after the last (on rank 0, sent to the other workers: distributed.on_rank_zero inside the method's
`evaluate`), checkpoint every `checkpoint_every` steps, save the model on rank 0, and return the run's result.

What differs between methods is a `FinetuneRun` subclass's: building the model, optimiser and schedule (its
`start` function), one optimiser step (`train_step`), an evaluation and its history record (`evaluate`), the
values a checkpoint carries besides the loop's (`carry`/`restore`) and the result (`result`).

An evaluation runs after a step and before that step's checkpoint, so a checkpoint holds every evaluation up
to its step and a resumed run never repeats or skips one. The learning rate logged at a step is the one that
step used (read before the step moves the schedule).

Ray is imported by `train_runs` and `train_run` alone: a `FinetuneRun` subclass imports without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pix2point.training.loop import Training

if TYPE_CHECKING:
    from pix2point.training.runtime.tracking import Scalars


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: its history `record` (a method's row type, io/*_table.py), the values the console line
    shows, and the TensorBoard scalars (tag -> number) logged at its step."""

    record: Any
    console: dict[str, float]
    scalars: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Finished:
    """What the loop knows of a run when its last step is done, for the method's result."""

    evaluations: int  # history records of this run, over every attempt
    resumed_from: int  # the step this attempt started at (0: from the first)
    seconds: float  # training time, attempts before a resume included
    step: int  # the run's last step (its `steps`)


@dataclass
class FinetuneRun(Training):
    """One run of a grid: a method subclasses it with its data and config. `run` is the grid's run spec (a
    frozen dataclass with `name` and `seed`); `steps` optimiser steps in all, evaluations every `eval_every`
    steps and after the last; checkpoints every `checkpoint_every`; TensorBoard events under `out`; the final
    state dict to `model_file` (None: not saved)."""

    run: Any
    steps: int
    eval_every: int
    checkpoint_every: int
    out: Path
    model_file: Path | None

    @property
    def seed(self) -> int:
        return self.run.seed

    def train_step(self, step: int, model: Any) -> dict[str, float]:
        """One optimiser step (0-based `step`) through `model` (the DDP wrapper of `self.model`), moving the
        schedule too (distributed.optimiser_step) -> this worker's values to log for it ({"loss": ..., terms}),
        {} when the step was skipped."""
        raise NotImplementedError

    def evaluate(self, done: int, window: list[dict[str, float]], seconds: float) -> Evaluation:
        """Evaluate after `done` steps; `window` holds `train_step`'s values since the previous evaluation."""
        raise NotImplementedError

    def carry(self) -> dict[str, Any]:
        """What a checkpoint keeps of the method's own running values (best score so far, ...)."""
        return {}

    def restore(self, carried: dict[str, Any]) -> None:
        """Take back `carry()`'s values from a resumed checkpoint."""

    def result(self, finished: Finished, scalars: Scalars) -> Any:
        """The run's result (a row of the stage's runs table, with a `run` name); may log final scalars."""
        raise NotImplementedError


def train_runs(runs: Sequence[Any], start: Callable[[Any, dict], FinetuneRun]) -> None:
    """A worker's loop over a trainer's queue of runs (training/runtime/trials.py): `start(run, state)` builds each
    run's `FinetuneRun` (seeding torch with the run's seed first, so every worker builds the same model), and
    the run trains in `train_run`; the results travel in the final checkpoint's state."""
    import torch

    from pix2point.training.runtime import distributed

    def train(run: Any, state: dict) -> Any:
        torch.manual_seed(run.seed)
        return train_run(start(run, state), state)

    distributed.train_runs_in_order(runs, train)


def train_run(training: FinetuneRun, state: dict) -> Any:
    """Train one run to its last step; evaluations append their records to state["history"]."""
    import ray.train.torch

    from pix2point.training.runtime import distributed
    from pix2point.training.runtime.progress import Progress
    from pix2point.training.runtime.tracking import Scalars

    name = training.run.name
    done, window, seconds_before = 0, [], 0.0
    if (current := distributed.resumed_run(state, name)) is not None:
        done = distributed.restore_run(current, training.model, training.optimizer, training.schedule)
        window, seconds_before = current["window"], current["seconds"]
        training.restore(current["carried"])
    resumed_from = done
    training.model.train()
    model = ray.train.torch.prepare_model(training.model)
    started = time.perf_counter() - seconds_before
    console = Progress(f"run {name}", training.steps, done)
    scalars = Scalars(training.out, name, done)
    for step in range(done, training.steps):
        lr = training.schedule.get_last_lr()[0]  # the rate this step uses
        values = training.train_step(step, model)
        window.append(values)
        scalars.add(step + 1, {**{f"train/{key}": value for key, value in values.items()}, "train/lr": lr})
        if (step + 1) % training.eval_every == 0 or step + 1 == training.steps:
            evaluation = training.evaluate(step + 1, window, time.perf_counter() - started)
            state["history"].append(evaluation.record)
            window = []
            console.report(step + 1, **evaluation.console)
            scalars.add(step + 1, evaluation.scalars)
        distributed.checkpoint_if_due(state, name, step + 1, training.steps, training.checkpoint_every, training.model,
                                      training.optimizer, training.schedule, window=window,
                                      seconds=time.perf_counter() - started, carried=training.carry())
    evaluations = sum(record.run == name for record in state["history"])
    result = training.result(Finished(evaluations, resumed_from, time.perf_counter() - started, training.steps),
                             scalars)
    scalars.close()
    if training.model_file is not None:
        distributed.save_on_rank_zero(training.model, training.model_file)
    return result
