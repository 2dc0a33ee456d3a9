"""Ray Train plumbing shared by every training stage: launching, checkpoints to resume from, reductions."""

from __future__ import annotations

import contextvars
import functools
import json
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import ray
import ray.train
import torch
import torch.distributed as dist
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from pix2point.training.runtime import determinism, progress

STATE_FILE = "state.pt"
STEP_FILE = "step.json"  # beside STATE_FILE: the step a checkpoint holds, readable without loading the state


def fit(train_loop: Callable[[dict], None], config: dict[str, Any], *, num_workers: int, cpus_per_worker: int,
        use_gpu: bool | Literal["auto"], storage: Path, name: str, datasets: dict[str, Any] | None = None,
        dataset_config: ray.train.DataConfig | None = None, deterministic: bool = False) -> ray.train.Result:
    """Run `train_loop(config)` on `num_workers` Ray Train workers (DDP: gloo on CPU, nccl on GPU), with
    `datasets` (Ray Datasets the loop reads through ray.train.get_dataset_shard) under `dataset_config`, each
    worker first configured by `determinism.configure(deterministic)`.

    Checkpoints go under `storage/name`; a later call with the same storage and name resumes from the
    latest of them (Ray Train restores its checkpoint manager from that folder), which is how a killed
    stage continues instead of starting over. Progress lines the workers send (progress.py) are logged here.
    Raises ValueError when the workers cannot all be placed on the cluster (the trainer would otherwise wait
    for them for ever).
    """
    use_gpu = gpus_used(use_gpu)
    runs_that_fit(num_workers=num_workers, cpus_per_worker=cpus_per_worker, use_gpu=use_gpu)
    with progress.relay() as progress_lines:
        loop = progress.sending_to(progress_lines, functools.partial(_configured_loop, train_loop, deterministic))
        return _trainer(loop, config, num_workers=num_workers, cpus_per_worker=cpus_per_worker, use_gpu=use_gpu,
                        storage=storage, name=name,
                        datasets=datasets, dataset_config=dataset_config).fit()


def _trainer(train_loop: Callable[[dict], None], config: dict[str, Any], *, num_workers: int, cpus_per_worker: int,
             use_gpu: bool, storage: Path, name: str, datasets: dict[str, Any] | None = None,
             dataset_config: ray.train.DataConfig | None = None) -> TorchTrainer:
    return TorchTrainer(
        train_loop,
        train_loop_config=config,
        datasets=datasets,
        dataset_config=dataset_config,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cpus_per_worker}),
        run_config=RunConfig(
            name=name,
            storage_path=str(storage.resolve()),
            # A stage failure is the engine's to report; retrying here would hide it (and loop forever
            # when the cluster cannot place the workers).
            failure_config=FailureConfig(max_failures=0),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )


def gpus_used(use_gpu: bool | Literal["auto"]) -> bool:
    """`use_gpu` with "auto" resolved: whether the connected Ray cluster has a GPU."""
    return ray.cluster_resources().get("GPU", 0) >= 1 if use_gpu == "auto" else use_gpu


def runs_that_fit(*, num_workers: int, cpus_per_worker: int, use_gpu: bool | Literal["auto"]) -> int:
    """How many worker groups of `num_workers` workers (each `cpus_per_worker` CPUs and, with `use_gpu`, one
    GPU, on one node) the alive Ray nodes hold at once; ValueError naming the params if not one."""
    use_gpu = gpus_used(use_gpu)
    slots = 0
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    for resources in nodes:
        on_node = int(resources.get("CPU", 0) // cpus_per_worker)
        slots += min(on_node, int(resources.get("GPU", 0))) if use_gpu else on_node
    if slots < num_workers:
        largest = max((resources.get("CPU", 0) for resources in nodes), default=0)
        gpus = sum(resources.get("GPU", 0) for resources in nodes)
        raise ValueError(
            f"num_workers={num_workers} x cpus_per_worker={cpus_per_worker}{' with a GPU each' if use_gpu else ''} "
            f"cannot be placed: the Ray cluster has {len(nodes)} node(s), the largest with {largest:g} CPUs, "
            f"{gpus:g} GPUs in all; lower cpus_per_worker or num_workers")
    return slots // num_workers


# Ray Train V2 restores the checkpoint its manager's snapshot names as the latest
# (ray/train/v2/_internal/constants.py CHECKPOINT_MANAGER_SNAPSHOT_FILENAME, checkpoint_manager._load_state).
CHECKPOINT_SNAPSHOT = "checkpoint_manager_snapshot.json"


def checkpointed_step(storage: Path, name: str) -> int:
    """The step of the checkpoint Ray Train restores when the run `storage/name` resumes (0 when none): where a
    resumed run continues, known to the driver before any worker starts.

    Read from Ray's checkpoint-manager snapshot, not from the newest checkpoint folder: a worker killed after
    Ray wrote a folder but before Ray registered it resumes from the previous checkpoint, and a stream started
    at the folder's step would then be out of step with the restored state.
    """
    return checkpointed_progress(storage, name)[1]


def checkpointed_progress(storage: Path, name: str) -> tuple[str | None, int]:
    """(the grid run in progress, its step) of the checkpoint Ray Train restores for trainer `storage/name`:
    (None, 0) without one or between a grid's runs, (None, step) for a single run (pretraining)."""
    snapshot = storage / name / CHECKPOINT_SNAPSHOT
    if not snapshot.is_file():
        return None, 0
    latest = json.loads(snapshot.read_text()).get("latest_checkpoint_result")
    if not latest:
        return None, 0
    step_file = storage / name / latest["checkpoint_dir_name"] / STEP_FILE
    # A grid's checkpoint between runs holds no step: its run is finished and reads no samples.
    if not step_file.is_file():
        return None, 0
    progress = json.loads(step_file.read_text())
    return progress.get("run"), int(progress["step"])


def _configured_loop(train_loop: Callable[[Any], None], deterministic: bool, config: Any) -> None:
    determinism.configure(deterministic)
    train_loop(config)


def latest_state(device: torch.device) -> dict[str, Any] | None:
    """The training state saved by the latest checkpoint of this run, if it is being resumed."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return torch.load(Path(directory) / STATE_FILE, map_location=device, weights_only=False)


def report(metrics: dict[str, float], state: dict[str, Any] | None = None) -> None:
    """Report metrics from every worker; with `state`, rank 0 attaches it as a checkpoint."""
    if state is None or ray.train.get_context().get_world_rank() != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as directory:
        torch.save(state, Path(directory) / STATE_FILE)
        if (step := checkpoint_step(state)) is not None:
            current = state.get("current")
            progress = {"step": step} if current is None else {"step": step, "run": current["run"]}
            (Path(directory) / STEP_FILE).write_text(json.dumps(progress))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))


def checkpoint_step(state: dict[str, Any]) -> int | None:
    """The step a checkpoint's state resumes at: a single run's `step`, or the step of the run in progress of a
    grid (`run_snapshot`); None for a grid's state between runs."""
    if "step" in state:
        return state["step"]
    current = state.get("current")
    return None if current is None else current["step"]


# Set by the runner of a grid's trainer (training/runtime/trials.py) around the stage's worker loop: called on rank 0
# with (run name, `run_state`) as each run finishes, so its record exists before the next run starts.
RUN_FINISHED: contextvars.ContextVar[Callable[[str, dict[str, Any]], None] | None] = contextvars.ContextVar(
    "RUN_FINISHED", default=None)


def train_runs_in_order(runs: Sequence[Any], train_run: Callable[[Any, dict], Any]) -> dict[str, Any]:
    """Train `runs` one after another in this worker group, skipping those a resumed checkpoint finished.

    `train_run(run, state)` returns the run's result (an object with a `run` name); it may append to
    state["history"] (records with a `run` name) and checkpoint its progress with `checkpoint_run`. Each
    finished run is checkpointed, then rank 0 hands `RUN_FINISHED`'s callback, if one is set, that run's
    own state (`run_state`), before the next run starts. Returns the final state:
    {"finished": [results], "history": [...], "current": None, "resumed_from": {run: step},
    "times": {run: (started, finished) Unix seconds}, "worker_peak_rss_mb": this worker's peak RSS},
    resumed_from naming runs that an attempt continued from a checkpoint taken inside them.
    """
    state = latest_state(torch.device("cpu")) or {"finished": [], "history": [], "current": None}
    if state["current"] is not None:  # which run this attempt resumes, and from which step (for its record)
        state = {**state, "resumed_from": {**state.get("resumed_from", {}), state["current"]["run"]: state["current"]["step"]}}
    for run in runs:
        if run.name in {result.run for result in state["finished"]}:
            continue
        started = time.time()
        result = train_run(run, state)
        state = {**state, "finished": [*state["finished"], result], "current": None,
                 "times": {**state.get("times", {}), run.name: (started, time.time())},
                 "worker_peak_rss_mb": peak_rss_mb()}
        report({"runs_finished": len(state["finished"])}, state)
        if (on_finished := RUN_FINISHED.get()) is not None and ray.train.get_context().get_world_rank() == 0:
            on_finished(run.name, run_state(state, run.name))
    return state


def run_state(state: dict[str, Any], name: str) -> dict[str, Any]:
    """What `train_runs_in_order`'s state holds of finished run `name` alone: {"finished": [its result],
    "history": [its records], "resumed_from": {name: step} or {}, "times": {name: (started, finished)},
    "worker_peak_rss_mb": ...}, plus the entries of state["run_extras"], which a method sets when a run starts
    (detection: the objects its scenes left out) and which therefore describe run `name` when it finishes."""
    return {**state.get("run_extras", {}),
            "finished": [result for result in state["finished"] if result.run == name],
            "history": [record for record in state["history"] if record.run == name],
            "resumed_from": {run: step for run, step in state.get("resumed_from", {}).items() if run == name},
            "times": {name: state["times"][name]}, "worker_peak_rss_mb": state.get("worker_peak_rss_mb")}


def checkpoint_run(state: dict[str, Any], current: dict[str, Any]) -> None:
    """Checkpoint the run in progress (`current` carries its name, step and module/optimiser states)."""
    report({"runs_finished": len(state["finished"])}, {**state, "current": current})


def resumed_run(state: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The checkpointed progress of run `name`, if the resumed checkpoint was taken inside it."""
    current = state["current"]
    return current if current is not None and current["run"] == name else None


def run_snapshot(name: str, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 schedule: torch.optim.lr_scheduler.LRScheduler, **extra: Any) -> dict[str, Any]:
    """What `checkpoint_run` stores for a run in progress: enough to continue it at `step`."""
    return {"run": name, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(), **extra}


def restore_run(current: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                schedule: torch.optim.lr_scheduler.LRScheduler) -> int:
    """Load a `run_snapshot` into fresh objects; returns the step to continue from."""
    model.load_state_dict(current["model"])
    optimizer.load_state_dict(current["optimizer"])
    schedule.load_state_dict(current["schedule"])
    return current["step"]


def on_rank_zero(compute: Callable[[], Any]) -> Any:
    """`compute()` on rank 0 alone, its result sent to every worker: validation is the same on every worker,
    so one computes it and the others wait at the broadcast (they would wait at the next all-reduce anyway)."""
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return compute()
    box = [compute() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def is_rank_zero() -> bool:
    return ray.train.get_context().get_world_rank() == 0


def mean_over_workers(value: float) -> float:
    if not dist.is_available() or not dist.is_initialized():
        return value
    # NCCL reduces CUDA tensors only; gloo CPU ones.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.item() / dist.get_world_size()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, MB (Linux ru_maxrss is in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel, for saving weights without the `module.` prefix."""
    return getattr(model, "module", model)


def optimiser_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                   schedule: torch.optim.lr_scheduler.LRScheduler, grad_clip: float = 0.0) -> float:
    """Backpropagate `loss`, clip the gradients' global L2 norm to `grad_clip` (0: no clipping; the Point-MAE
    family's `grad_norm_clip`), step the optimiser and the schedule; returns the loss value."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()
    schedule.step()
    return loss.item()


def checkpoint_if_due(state: dict[str, Any], name: str, done: int, steps: int, every: int, model: torch.nn.Module,
                      optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler,
                      **extra: Any) -> None:
    """Checkpoint run `name` after `done` of its `steps` steps when `done` is a multiple of `every`
    (not after the last step: the finished run's result is checkpointed instead)."""
    if done % every == 0 and done < steps:
        checkpoint_run(state, run_snapshot(name, done, model, optimizer, schedule, **extra))


def save_on_rank_zero(model: torch.nn.Module, path: Path) -> None:
    if is_rank_zero():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(unwrap(model).state_dict(), path)
