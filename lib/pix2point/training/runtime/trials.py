"""A stage's grid of runs (finetune, classify, detect, finetune_objects) trained in concurrency slots.

The runs still to train are dealt to as many slots as `max_concurrent` and the cluster's CPUs/GPUs allow;
each slot is one `TorchTrainer` (`distributed.fit`, storage `<storage>/runs/<slot>`, the slot named after
its first run) whose workers train the slot's runs one after another (`distributed.train_runs_in_order`),
so a run pays for model building and its checkpoints, not for starting a trainer, its worker processes and
its process group (tens of seconds each on 2 cores: bench/run_overhead.py). A run's samples stream
through the slot's datasets, one segment per run (training/runtime/sample_stream.Segment).

Each finished run leaves a record at once (`<storage>/finished/<run>.pt`: its result, history, start and
end time), written by the slot's rank-0 worker. A killed stage started again skips every run with a record;
a run that a slot had checkpointed midway goes first in a slot with that slot's storage, so Ray Train
restores its checkpoint and it continues from that step; the other runs start afresh.

Why not a Ray Tune `Tuner`: Ray Train V2 trainers are not Tune trainables; the V2 pattern is a Tune
function trial that starts the trainer. That trial must reserve a non-zero resource of its own, which
Tune cannot size from the trainer's workers (a CPU reserved by the trial is one the workers may need:
with `cpus_per_worker` equal to a node's CPUs nothing would ever start), and Tune's resume is of the whole
experiment (`Tuner.restore` of its pickled state), not of one run.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from pix2point import stage_progress
from pix2point.training.runtime import distributed

if TYPE_CHECKING:
    from pix2point.training.param_groups import RunGridParams

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
    trainer: str | None = None  # the slot (its storage folder under <storage>/runs) that trained it
    node: str | None = None  # the Ray node id (hex) of the trainer's rank-0 worker

    @property
    def worker_peak_rss_mb(self) -> float | None:
        return self.state.get("worker_peak_rss_mb")

    @property
    def result(self) -> Any:
        (result,) = self.state["finished"]
        return result


def fit_runs(train_loop: Callable[[Any], None], config_for: Callable[[tuple[Any, ...]], Any], runs: Sequence[Any], *,
             num_workers: int, cpus_per_worker: int, use_gpu: bool | Literal["auto"], storage: Path,
             max_concurrent: int | None, deterministic: bool,
             data_for: Callable[[Any, dict[str, int]], dict[str, Any]] | None = None) -> list[RunRecord]:
    """Train every run of `runs` (objects with a unique `name`) not finished yet; returns all runs' records in
    the order of `runs`, so tables built from them read as a sequential grid's would.

    `config_for(slot_runs)` is the worker config of a trainer that trains `slot_runs` in that order;
    `data_for(config, start_steps)` gives that trainer's Ray Datasets (distributed.fit's `datasets` and
    `dataset_config`) for `start_steps` = {run name: the step its checkpoint holds, 0 for a fresh run}, in
    training order. When a slot fails, no further slot starts; the running ones finish (their runs' records
    are kept for the next attempt) and the first failure is raised.
    Raises ValueError when one run's workers need more CPUs or GPUs than the cluster has.
    """
    pending = [run for run in runs if read_record(storage, run.name) is None]
    if pending:
        limit = concurrent_runs(len(pending), num_workers=num_workers, cpus_per_worker=cpus_per_worker,
                                use_gpu=use_gpu, requested=max_concurrent)
        slots = deal_slots(pending, limit, resumable_runs(storage / RUNS_STORAGE, {run.name for run in pending}))
        log.info("%d of %d runs to train, in %d trainers, %d at a time", len(pending), len(runs), len(slots), limit)
        fit_one = lambda slot: _fit_slot(train_loop, config_for, slot, storage, data_for,  # noqa: E731
                                         num_workers=num_workers, cpus_per_worker=cpus_per_worker, use_gpu=use_gpu,
                                         deterministic=deterministic)
        done = len(runs) - len(pending)
        stage_progress.report(done, len(runs), "runs")
        for slot in _run_all(fit_one, slots, limit):
            done += len(slot.runs)
            stage_progress.report(done, len(runs), "runs")
    records = {run.name: read_record(storage, run.name) for run in runs}
    missing = [name for name, record in records.items() if record is None]
    if missing:
        raise RuntimeError(f"the trainers ended without a record of runs {missing} in {storage / FINISHED}")
    return [records[run.name] for run in runs]


@dataclass(frozen=True)
class Slot:
    """One trainer's queue: `runs` in training order, its storage folder `<storage>/runs/<name>`, and the step
    its checkpoint holds of its first run (0: none; every other run starts afresh)."""

    name: str
    runs: tuple[Any, ...]
    resumed_step: int = 0


def resumable_runs(storage: Path, pending: set[str]) -> dict[str, tuple[str, int]]:
    """{run: (trainer folder, step)} for each pending run that a trainer folder under `storage` checkpointed
    midway (the checkpoint Ray Train would restore there)."""
    found = {}
    for folder in sorted(path.name for path in storage.glob("*") if path.is_dir()) if storage.is_dir() else []:
        run, step = distributed.checkpointed_progress(storage, folder)
        if run in pending and step > 0:
            found[run] = (folder, step)
    return found


def deal_slots(pending: Sequence[Any], limit: int, resumable: dict[str, tuple[str, int]]) -> list[Slot]:
    """The trainers for `pending` (in grid order): each checkpointed run first in a trainer of its own folder
    (so Ray Train restores it), the others dealt round-robin in grid order, over at least `limit` trainers
    (more only when more runs than that were checkpointed midway)."""
    queues: list[list[Any]] = [[run] for run in pending if run.name in resumable]
    queues += [[] for _ in range(max(0, min(limit, len(pending)) - len(queues)))]
    fresh = [run for run in pending if run.name not in resumable]
    for index, run in enumerate(fresh):
        queues[index % len(queues)].append(run)
    slots, used = [], {folder for folder, _ in resumable.values()}
    for queue in filter(None, queues):
        first = queue[0].name
        if first in resumable:
            slots.append(Slot(resumable[first][0], tuple(queue), resumable[first][1]))
            continue
        name = first
        while name in used:  # a folder another trainer resumes from
            name += "+"
        used.add(name)
        slots.append(Slot(name, tuple(queue)))
    return slots


def _run_all(fit_one: Callable[[Slot], Slot], slots: list[Slot], limit: int) -> list[Slot]:
    finished: list[Slot] = []
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="run") as pool:
        # Each slot's thread gets the stage's context, so its training lines reach the stage's live view.
        not_done = {pool.submit(contextvars.copy_context().run, fit_one, slot) for slot in slots}
        while not_done:
            done, not_done = wait(not_done, return_when=FIRST_COMPLETED)
            failed = [future for future in done if future.exception() is not None]
            if failed:
                for future in not_done:
                    future.cancel()  # slots not started yet stay unstarted; running ones finish
                wait(not_done)
                raise failed[0].exception()
            finished.extend(future.result() for future in done)
    return finished


def _fit_slot(train_loop: Callable[[Any], None], config_for: Callable[[tuple[Any, ...]], Any], slot: Slot,
              storage: Path, data_for: Callable[[Any, dict[str, int]], dict[str, Any]] | None, **scaling: Any) -> Slot:
    config = config_for(slot.runs)
    starts = {run.name: 0 for run in slot.runs} | {slot.runs[0].name: slot.resumed_step}
    data = {} if data_for is None else data_for(config, starts)
    loop = functools.partial(_recording_loop, train_loop, storage / FINISHED, slot.name)
    distributed.fit(loop, config, storage=storage / RUNS_STORAGE, name=slot.name, **scaling, **data)
    return slot


def _recording_loop(train_loop: Callable[[Any], None], records: Path, trainer: str, config: Any) -> None:
    """The stage's worker loop, with each run's record written as soon as the run finishes."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    token = distributed.RUN_FINISHED.set(functools.partial(_write_record_of, records, trainer, node))
    try:
        train_loop(config)
    finally:
        distributed.RUN_FINISHED.reset(token)


def _write_record_of(records: Path, trainer: str, node: str, name: str, state: dict[str, Any]) -> None:
    started, finished = state["times"][name]
    _write_record(records, RunRecord(name, state, started, finished, state["resumed_from"].get(name, 0), trainer, node))


def read_record(storage: Path, name: str) -> RunRecord | None:
    path = storage / FINISHED / f"{name}.pt"
    return RunRecord(**torch.load(path, weights_only=False)) if path.is_file() else None


def _write_record(records: Path, record: RunRecord) -> None:
    path = records / f"{record.run}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    torch.save(record.__dict__, partial)
    partial.rename(path)  # a record is there whole or not at all


def concurrent_runs(runs: int, *, num_workers: int, cpus_per_worker: int, use_gpu: bool | Literal["auto"],
                    requested: int | None = None) -> int:
    """How many runs to train at once: `requested` (None: as many as there are runs), capped by the runs
    whose workers the alive Ray nodes can hold at once (a worker needs `cpus_per_worker` CPUs, and a GPU
    with `use_gpu`, on one node). Raises ValueError if not even one run fits: its trainer would wait for ever."""
    fit = distributed.runs_that_fit(num_workers=num_workers, cpus_per_worker=cpus_per_worker, use_gpu=use_gpu)
    return max(1, min(runs, fit, requested or runs))


def train_grid_stage(train_loop: Callable[[Any], None], config_for: Callable[[tuple[Any, ...]], Any],
                     runs: Sequence[Any], params: RunGridParams, *, out: Path, scratch: Path,
                     write_runs: Callable[[list[Any]], None], write_history: Callable[[list[Any]], None],
                     report: Callable[[list[RunRecord]], dict] | None = None, report_file: Path | None = None,
                     data_for: Callable[[Any, dict[str, int]], dict[str, Any]] | None = None) -> dict:
    """What every grid stage (finetune, classify, detect, finetune_objects) does with its runs, `params` its
    Params (a RunGridParams; a ReportNoteParams too when it names a `report_file`): train them
    (`fit_runs` under `params.run_grid_scaling()`, checkpoints and records under `scratch`), write its runs
    table (`write_runs(results)`, in grid order) and history (`write_history(records)`, every run's in turn),
    trials.parquet, copy the files the runs wrote under `scratch/outputs` into `out`, then
    `report(run records)` -> its metrics, and put `params.report_note` atop `report_file` (none: no note).
    Returns the metrics with `seconds`, the stage's wall time from the first run's start."""
    import time

    from pix2point.evaluation.report_note import add_note
    from pix2point.io.trials_table import write_trials

    started = time.perf_counter()
    records = fit_runs(train_loop, config_for, runs, storage=scratch, **params.run_grid_scaling(), data_for=data_for)
    write_runs([record.result for record in records])
    write_history([entry for record in records for entry in record.state["history"]])
    write_trials(out, records)
    copy_run_outputs(run_outputs(scratch), out)
    metrics = {} if report is None else report(records)
    if report_file is not None:
        add_note(report_file, params.report_note)
    return {**metrics, "seconds": round(time.perf_counter() - started, 1)}


def run_outputs(scratch: Path) -> Path:
    """Where a grid's runs write their files (models, TensorBoard events): in the stage's scratch, which
    outlives a killed attempt; `train_grid_stage` copies them into the artefact at the end."""
    return scratch / "outputs"


def copy_run_outputs(source: Path, out: Path) -> None:
    """Files the runs wrote (into a directory that outlives a killed attempt) into the artefact."""
    if source.is_dir():
        shutil.copytree(source, out, dirs_exist_ok=True)
