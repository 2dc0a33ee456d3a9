"""A stage's grid of runs (finetune, classify) as concurrent trials: each run is its own Ray Train run.

Every run gets its own `TorchTrainer` (`distributed.fit`, storage `<storage>/runs/<run>`), started from a
driver thread, as many at once as `max_concurrent` and the cluster's CPUs/GPUs allow. A run that finishes
leaves a record (`<storage>/finished/<run>.pt`: its results, history, start and end time); a killed stage
started again skips every run with a record and restarts the others, each from its own latest checkpoint.
Inside a trainer the worker loop is unchanged: `distributed.train_runs_in_order` over that one run.

Why not a Ray Tune `Tuner`: Ray Train V2 trainers are not Tune trainables; the V2 pattern is a Tune
function trial that starts the trainer. That trial must reserve a non-zero resource of its own, which
Tune cannot size from the trainer's workers (a CPU reserved by the trial is one the workers may need:
with `cpus_per_worker` equal to a node's CPUs nothing would ever start), and Tune's resume is of the whole
experiment (`Tuner.restore` of its pickled state), not of one run. Per-run trainers with per-run storage
resume each run on their own, and the limit below is computed from the workers' own requests.
"""

from __future__ import annotations

import contextvars
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pix2point import stage_progress
from pix2point.training import distributed

log = logging.getLogger(__name__)

RUNS_STORAGE = "runs"  # <storage>/runs/<run>/: that run's Ray Train checkpoints
FINISHED = "finished"  # <storage>/finished/<run>.pt: the record of a finished run


@dataclass(frozen=True)
class RunRecord:
    """One finished run: `state` is `train_runs_in_order`'s final state for that run alone."""

    run: str
    state: dict[str, Any]  # {"finished": [result], "history": [...], "resumed_from": {run: step}}
    started_at: float  # Unix seconds, when the attempt that finished it started
    finished_at: float  # Unix seconds
    resumed_from_step: int  # 0: that attempt trained from the first step

    @property
    def worker_peak_rss_mb(self) -> float | None:
        return self.state.get("worker_peak_rss_mb")

    @property
    def result(self) -> Any:
        (result,) = self.state["finished"]
        return result


def fit_runs(train_loop: Callable[[Any], None], config_for: Callable[[Any], Any], runs: Sequence[Any], *,
             num_workers: int, cpus_per_worker: int, use_gpu: bool, storage: Path,
             max_concurrent: int | None, deterministic: bool,
             data_for: Callable[[Any, int], dict[str, Any]] | None = None) -> list[RunRecord]:
    """Train every run of `runs` (objects with a unique `name`) not finished yet; returns all runs' records in
    the order of `runs`, so tables built from them read as a sequential grid's would.

    `config_for(run)` is the worker config for that run alone; `data_for(config, start_step)` gives its
    trainer's Ray Datasets (distributed.fit's `datasets` and `dataset_config`) from the step its checkpoint
    holds (0 for a fresh run). When a run fails, no further run starts; the
    running ones finish (their records are kept for the next attempt) and the first failure is raised.
    Raises ValueError when one run's workers need more CPUs or GPUs than the cluster has.
    """
    records = {run.name: read_record(storage, run.name) for run in runs}
    pending = [run for run in runs if records[run.name] is None]
    if pending:
        limit = concurrent_runs(len(pending), num_workers=num_workers, cpus_per_worker=cpus_per_worker,
                                use_gpu=use_gpu, requested=max_concurrent)
        log.info("%d of %d runs to train, %d at a time", len(pending), len(runs), limit)
        fit_one = lambda run: _fit_run(train_loop, config_for(run), run.name, storage, data_for,  # noqa: E731
                                       num_workers=num_workers, cpus_per_worker=cpus_per_worker, use_gpu=use_gpu,
                                       deterministic=deterministic)
        for record in _run_all(fit_one, pending, limit, total=len(runs)):
            records[record.run] = record
    return [records[run.name] for run in runs]


def _run_all(fit_one: Callable[[Any], RunRecord], pending: list[Any], limit: int, total: int) -> list[RunRecord]:
    finished: list[RunRecord] = []
    stage_progress.report(total - len(pending), total, "runs")
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="run") as pool:
        # Each run's thread gets the stage's context, so its training lines reach the stage's live view.
        not_done = {pool.submit(contextvars.copy_context().run, fit_one, run) for run in pending}
        while not_done:
            done, not_done = wait(not_done, return_when=FIRST_COMPLETED)
            failed = [future for future in done if future.exception() is not None]
            if failed:
                for future in not_done:
                    future.cancel()  # runs not started yet stay unstarted; running ones finish
                wait(not_done)
                raise failed[0].exception()
            finished.extend(future.result() for future in done)
            stage_progress.report(total - len(pending) + len(finished), total, "runs")
    return finished


def _fit_run(train_loop: Callable[[Any], None], config: Any, name: str, storage: Path,
             data_for: Callable[[Any, int], dict[str, Any]] | None, **scaling: Any) -> RunRecord:
    started_at = time.time()
    data = {} if data_for is None else data_for(config, distributed.checkpointed_step(storage / RUNS_STORAGE, name))
    result = distributed.fit(train_loop, config, storage=storage / RUNS_STORAGE, name=name, **scaling, **data)
    with result.checkpoint.as_directory() as directory:
        state = torch.load(Path(directory) / distributed.STATE_FILE, map_location="cpu", weights_only=False)
    record = RunRecord(name, state, started_at, time.time(), state.get("resumed_from", {}).get(name, 0))
    _write_record(storage, record)
    return record


def read_record(storage: Path, name: str) -> RunRecord | None:
    path = storage / FINISHED / f"{name}.pt"
    return RunRecord(**torch.load(path, weights_only=False)) if path.is_file() else None


def _write_record(storage: Path, record: RunRecord) -> None:
    path = storage / FINISHED / f"{record.run}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    torch.save(record.__dict__, partial)
    partial.rename(path)  # a record is there whole or not at all


def concurrent_runs(runs: int, *, num_workers: int, cpus_per_worker: int, use_gpu: bool,
                    requested: int | None = None) -> int:
    """How many runs to train at once: `requested` (None: as many as there are runs), capped by the runs
    whose workers the alive Ray nodes can hold at once (a worker needs `cpus_per_worker` CPUs, and a GPU
    with `use_gpu`, on one node). Raises ValueError if not even one run fits: its trainer would wait for ever."""
    fit = distributed.runs_that_fit(num_workers=num_workers, cpus_per_worker=cpus_per_worker, use_gpu=use_gpu)
    return max(1, min(runs, fit, requested or runs))


def copy_run_outputs(source: Path, out: Path) -> None:
    """Files the runs wrote (into a directory that outlives a killed attempt) into the artefact."""
    if source.is_dir():
        shutil.copytree(source, out, dirs_exist_ok=True)
