"""A grid's runs in concurrency slots (real Ray Train, MinkowskiEngine, tiny synthetic scenes): two slots train
four runs two at a time and equal one slot's runs one after another, and a stage killed after one of three runs
resumes only what is left, the interrupted run from its checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from stages import finetune

from pix2point.io.finetune_table import read_history, read_runs
from pix2point.io.trials_table import read_trials
from pix2point.models.backbone import BackboneSpec, build_backbone, save_backbone
from pix2point.training.runtime import distributed, trials
from pix2point.training.runtime.distributed import runs_that_fit

TINY = dict(inits=["scratch"], label_fractions=[1.0], steps=4, eval_every=2, scenes_per_batch=1, cpus_per_worker=1)


@pytest.fixture(scope="module")
def pretrain_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("pretrain")
    torch.manual_seed(0)
    spec = BackboneSpec("tiny", "rgb", 0.05)
    save_backbone(directory, build_backbone(spec), spec)
    return directory


def run_finetune(scenes: Path, pretrain: Path, root: Path, **params) -> Path:
    out = root / "out"
    out.mkdir(parents=True)
    finetune.run(finetune.Params(**{**TINY, **params}), {"scenes": scenes, "pretrain": pretrain}, out, scratch=root / "scratch")
    return out


def scalars(out: Path, run: str, tag: str) -> list[tuple[int, float]]:
    """(step, value) of `tag` in run `run`'s TensorBoard event files in artefact `out`, as TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard" / run))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


def same_results(first: Path, second: Path) -> None:
    for a, b in zip(read_runs(first), read_runs(second), strict=True):
        assert (a.run, a.final_val_miou, a.best_val_miou) == (b.run, b.final_val_miou, b.best_val_miou)
        np.testing.assert_array_equal(a.confusion, b.confusion)
    assert [(h.run, h.epoch, h.train_loss, h.val_miou) for h in read_history(first)] == \
        [(h.run, h.epoch, h.train_loss, h.val_miou) for h in read_history(second)]


@pytest.mark.slow
def test_four_runs_in_two_slots_overlap_train_once_and_equal_one_after_another(ray_runtime, tiny_scenes, pretrain_dir,
                                                                               tmp_path):
    # Deterministic mode: equal results are then a property of the schedule, and no drift repeat joins the runs.
    together = run_finetune(tiny_scenes, pretrain_dir, tmp_path / "together", seeds=[0, 1, 2, 3],
                            max_concurrent_runs=2, deterministic=True)
    apart = run_finetune(tiny_scenes, pretrain_dir, tmp_path / "apart", seeds=[0, 1, 2, 3], max_concurrent_runs=1,
                         deterministic=True)
    runs = read_trials(together)
    assert sorted(trial.run for trial in runs) == sorted(run.run for run in read_runs(together)) and len(runs) == 4
    # Two trainers (the slots' storage folders, named after their first runs), each training two of the runs.
    assert sorted(path.name for path in (tmp_path / "together" / "scratch" / trials.RUNS_STORAGE).iterdir()) == \
        ["scratch-labels1-seed0", "scratch-labels1-seed1"]
    assert sorted({trial.trainer for trial in runs}) == ["scratch-labels1-seed0", "scratch-labels1-seed1"]
    overlapping = [(a.run, b.run) for a in runs for b in runs
                   if a.run < b.run and a.started_at < b.finished_at and b.started_at < a.finished_at]
    assert len(overlapping) >= 2, f"two slots should train two runs at a time: {runs}"
    in_order = read_trials(apart)
    assert all(a.finished_at <= b.started_at for a, b in zip(in_order, in_order[1:])), "max_concurrent_runs=1 overlapped"
    same_results(together, apart)
    # Each run's TensorBoard curves (issue 15.4): loss and lr every step, validation mIoU at each evaluation.
    for run in read_runs(together):
        assert [step for step, _ in scalars(together, run.run, "train/loss")] == [1, 2, 3, 4]
        assert [step for step, _ in scalars(together, run.run, "train/lr")] == [1, 2, 3, 4]
        assert scalars(together, run.run, "val/miou") == [
            (2 * record.epoch, pytest.approx(record.val_miou)) for record in read_history(together) if record.run == run.run]


@dataclass(frozen=True)
class Run:
    name: str


def test_slots_put_each_checkpointed_run_first_in_its_own_folder_and_deal_the_rest_in_grid_order():
    grid = [Run(f"r{index}") for index in range(7)]
    fresh = trials.deal_slots(grid, 2, {})
    assert [(slot.name, [run.name for run in slot.runs], slot.resumed_step) for slot in fresh] == [
        ("r0", ["r0", "r2", "r4", "r6"], 0), ("r1", ["r1", "r3", "r5"], 0)]
    # r3 was checkpointed at step 8 by the trainer in folder r2; a fresh trainer named r2 would restore it too.
    resumed = trials.deal_slots(grid[1:], 2, {"r3": ("r2", 8)})
    assert [(slot.name, [run.name for run in slot.runs], slot.resumed_step) for slot in resumed] == [
        ("r2", ["r3", "r1", "r4", "r6"], 8), ("r2+", ["r2", "r5"], 0)]
    # More runs checkpointed midway than slots: each still resumes in its own folder (run two at a time).
    many = trials.deal_slots(grid[:3], 1, {"r0": ("a", 2), "r2": ("b", 4)})
    assert [(slot.name, [run.name for run in slot.runs]) for slot in many] == [("a", ["r0", "r1"]), ("b", ["r2"])]


def test_the_limit_follows_the_cluster_and_an_impossible_request_is_an_error(ray_runtime):
    cpus = int(ray_runtime.cluster_resources()["CPU"])
    assert trials.concurrent_runs(12, num_workers=1, cpus_per_worker=1, use_gpu=False) == min(12, cpus)
    assert trials.concurrent_runs(12, num_workers=1, cpus_per_worker=1, use_gpu=False, requested=1) == 1
    assert trials.concurrent_runs(1, num_workers=1, cpus_per_worker=1, use_gpu=False) == 1
    with pytest.raises(ValueError, match=rf"cpus_per_worker={cpus + 1} cannot be placed.*largest with {cpus} CPUs"):
        runs_that_fit(num_workers=1, cpus_per_worker=cpus + 1, use_gpu=False)
    with pytest.raises(ValueError, match="with a GPU each cannot be placed"):
        runs_that_fit(num_workers=1, cpus_per_worker=1, use_gpu=True)


KILLED_STAGE = """
import sys
from pathlib import Path
from stages import finetune
from pix2point.engine.cluster import start_local_ray
start_local_ray(num_cpus=2, include_dashboard=False)  # never another session's Ray
scenes, pretrain, root = map(Path, sys.argv[1:4])
params = finetune.Params(inits=["scratch"], label_fractions=[1.0], seeds=[0, 1, 2], steps=40, eval_every=20,
                         scenes_per_batch=1, cpus_per_worker=1, checkpoint_every=2, max_concurrent_runs=1,
                         drift_repeats=0)  # the three runs of the grid only
(root / "out").mkdir(parents=True, exist_ok=True)
finetune.run(params, {"scenes": scenes, "pretrain": pretrain}, root / "out", scratch=root / "scratch")
"""


@pytest.mark.slow
def test_a_killed_stage_keeps_its_finished_run_and_resumes_the_interrupted_one(ray_runtime, tiny_scenes, pretrain_dir, tmp_path,
                                                                              checkpointed_in):
    # Its own process group with its own Ray: killing the group is a lost driver with its workers.
    command = [sys.executable, "-c", textwrap.dedent(KILLED_STAGE), str(tiny_scenes), str(pretrain_dir), str(tmp_path)]
    driver = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scratch = tmp_path / "scratch"
    deadline = time.monotonic() + 600
    while not (list(scratch.glob(f"{trials.FINISHED}/*.pt")) and checkpointed_in(scratch, "seed1")):
        assert driver.poll() is None, "the stage ended before it could be killed"
        assert time.monotonic() < deadline, "no finished run and checkpointed second run within 10 minutes"
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    killed_at = time.time()
    (finished,) = [path.stem for path in scratch.glob(f"{trials.FINISHED}/*.pt")]
    assert finished.endswith("seed0")

    out = tmp_path / "again"
    out.mkdir()
    finetune.run(finetune.Params(**{**TINY, "seeds": [0, 1, 2], "steps": 40, "eval_every": 20, "checkpoint_every": 2,
                                    "max_concurrent_runs": 1, "drift_repeats": 0}),
                 {"scenes": tiny_scenes, "pretrain": pretrain_dir}, out, scratch=scratch)
    by_run = {trial.run.rsplit("-", 1)[1]: trial for trial in read_trials(out)}
    assert by_run["seed0"].finished_at.timestamp() < killed_at, "the finished run was trained again"
    assert by_run["seed1"].started_at.timestamp() > killed_at and by_run["seed1"].resumed_from_step >= 2
    assert by_run["seed2"].resumed_from_step == 0
    assert len(read_runs(out)) == 3 and all((out / "runs" / run.run / "model.pt").is_file() for run in read_runs(out))
    assert sorted({record.run for record in read_history(out)}) == sorted(run.run for run in read_runs(out))
    # TensorBoard: the resumed run's curves have every step once, none lost to the kill or dropped on resume.
    for run in read_runs(out):
        assert [step for step, _ in scalars(out, run.run, "train/loss")] == list(range(1, 41)), run.run
        assert [step for step, _ in scalars(out, run.run, "val/miou")] == [20, 40], run.run


def test_a_runs_record_carries_what_its_method_noted_when_it_started_and_only_its_own_results():
    # Detection notes the objects its scenes left out (io/scannet_boxes.py) in state["run_extras"] at a run's start.
    Result = namedtuple("Result", "run")
    state = {"finished": [Result("a"), Result("b")], "history": [Result("a"), Result("b"), Result("b")],
             "resumed_from": {"b": 7}, "times": {"a": (0.0, 1.0), "b": (1.0, 3.0)}, "worker_peak_rss_mb": 512.0,
             "run_extras": {"left_out_objects": {"scene0000_00": {"no_vertices": 2}}}, "current": {"model": "big"}}
    record = distributed.run_state(state, "b")
    assert record == {"left_out_objects": {"scene0000_00": {"no_vertices": 2}}, "finished": [Result("b")],
                      "history": [Result("b"), Result("b")], "resumed_from": {"b": 7}, "times": {"b": (1.0, 3.0)},
                      "worker_peak_rss_mb": 512.0}
