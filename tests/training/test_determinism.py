"""Deterministic mode: every training stage, run twice with the same params, writes bit-identical tables and
weights, even when the second run has another thread count and is killed (its Ray Train worker SIGKILLed)
after a checkpoint and resumed. Plus the mechanics: per-step streams and MinkowskiEngine's thread count."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from stages import classify, finetune, finetune_objects, pretrain

from pix2point.io.artefact_diff import diff_artefacts
from pix2point.models.backbone import BackboneSpec, build_backbone, save_backbone
from pix2point.models.voxelize import sparse_tensor
from pix2point.training.runtime.determinism import epoch_rng, step_streams


def test_step_streams_depend_on_seed_rank_and_step_only():
    def draws(seed, rank, step):
        streams = step_streams(seed, rank, step)
        return (streams.numpy.random(4).tolist(), torch.rand(4, generator=streams.torch).tolist(),
                torch.rand(4).tolist())  # the global RNG, reseeded by step_streams

    torch.rand(100)  # whatever ran before must not matter
    first = draws(0, 0, 5)
    assert draws(0, 0, 5) == first
    numpy_draws, generator_draws, global_draws = first
    assert len({tuple(numpy_draws), tuple(generator_draws), tuple(global_draws)}) == 3  # three streams, not copies
    for other in ((1, 0, 5), (0, 1, 5), (0, 0, 6)):
        assert all(a != b for a, b in zip(draws(*other), first))


def test_the_epoch_order_stream_is_not_the_same_numbered_step_stream():
    assert epoch_rng(0, 0, 3).random(4).tolist() != step_streams(0, 0, 3).numpy.random(4).tolist()
    assert epoch_rng(0, 0, 3).random(4).tolist() == epoch_rng(0, 0, 3).random(4).tolist()


def conv_weight_gradient(coordinates: torch.Tensor, features: torch.Tensor, conv: torch.nn.Module) -> torch.Tensor:
    conv.zero_grad()
    conv(sparse_tensor(features, coordinates)).F.square().sum().backward()
    return conv.kernel.grad.clone()


def test_one_thread_gives_minkowski_one_kernel_map_order_and_keeps_torch_at_one_thread():
    import MinkowskiEngine as ME

    torch.manual_seed(0)
    grid = torch.unique(torch.randint(0, 30, (8000, 3)), dim=0).int()
    coordinates = torch.cat([torch.zeros(len(grid), 1, dtype=torch.int32), grid], 1)
    features = torch.randn(len(grid), 8)
    conv = ME.MinkowskiConvolution(8, 16, kernel_size=3, dimension=3)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        gradients = [conv_weight_gradient(coordinates, features, conv) for _ in range(4)]
        # ME's default coordinate manager would have set OpenMP (shared with torch) to min(cpu_count, 20).
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(gradient, gradients[0]) for gradient in gradients[1:])


# --- every training stage: an uninterrupted 1-thread run vs a 2-thread run killed after a checkpoint and resumed


def train_worker_pids() -> list[int]:
    """Ray Train workers among this process's descendants (the test session's own Ray), by /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], list(children.get(os.getpid(), []))
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        try:
            if b"RayTrainWorker" in (Path("/proc") / str(pid) / "cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def killed_then_resumed(run: Callable[[Path], object], tmp_path: Path, scratch: Path) -> Path:
    """Run `run(out)` in a thread, SIGKILL its Ray Train workers once a checkpoint exists under `scratch`, then
    run again into a fresh directory (resuming from that checkpoint); returns the resumed run's output."""
    failures: list[BaseException] = []

    def attempt() -> None:
        try:
            run(tmp_path / "killed")
        except BaseException as error:  # noqa: BLE001 - the killed run's failure is what is expected
            failures.append(error)

    (tmp_path / "killed").mkdir()
    thread = threading.Thread(target=attempt)
    thread.start()
    deadline = time.monotonic() + 600
    while not list(scratch.rglob("checkpoint_*")):
        assert thread.is_alive(), f"the run ended before its first checkpoint: {failures}"
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.05)
    workers = train_worker_pids()
    assert workers, "no Ray Train worker to kill"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    thread.join()
    assert failures, "the killed run finished anyway"
    (tmp_path / "resumed").mkdir()
    run(tmp_path / "resumed")
    return tmp_path / "resumed"


def assert_reproduced(run: Callable[[Path, int, Path], object], tmp_path: Path) -> None:
    (tmp_path / "once").mkdir()
    run(tmp_path / "once", 1, tmp_path / "scratch-once")
    scratch = tmp_path / "scratch-twice"
    resumed = killed_then_resumed(lambda out: run(out, 2, scratch), tmp_path, scratch)
    differences = diff_artefacts(tmp_path / "once", resumed)
    assert not differences, "\n".join(map(str, differences))
    assert any(path.suffix == ".pt" for path in resumed.rglob("*")) and any(resumed.glob("*.parquet"))


@pytest.mark.slow
def test_ppkt_pretraining_reruns_bit_identical(smoke_spine, tmp_path):
    def run(out: Path, cpus: int, scratch: Path) -> dict:
        params = pretrain.PPKTParams(backbone="tiny", voxel_size=0.05, num_pairs=256, frames_per_batch=2, steps=8,
                                     learning_rate=0.1, checkpoint_every=2, cpus_per_worker=cpus, deterministic=True)
        return pretrain.run(params, smoke_spine, out, scratch=scratch)

    assert_reproduced(run, tmp_path)


@pytest.mark.slow
def test_i2p_mae_pretraining_reruns_bit_identical(tiny_objects, tmp_path):
    def run(out: Path, cpus: int, scratch: Path) -> dict:
        params = pretrain.I2PMAEParams(
            num_groups=(64, 32, 8), group_sizes=(16, 8, 4), encoder_dims=(24, 48, 96), encoder_depths=(1, 1, 1),
            num_heads=3, token_embed_dims=(16, 32, 64), masking="random", target_2d=False, batch_size=8, steps=8,
            warmup_steps=1, checkpoint_every=2, cpus_per_worker=cpus, deterministic=True)
        return pretrain.run(params, {"objects": tiny_objects}, out, scratch=scratch)

    assert_reproduced(run, tmp_path)


@pytest.mark.slow
def test_finetuning_reruns_bit_identical(smoke_spine, tmp_path):
    spec = BackboneSpec("tiny", "rgb", 0.05)
    pretrained = tmp_path / "pretrain"
    pretrained.mkdir()
    torch.manual_seed(0)
    save_backbone(pretrained, build_backbone(spec), spec)

    def run(out: Path, cpus: int, scratch: Path) -> dict:
        params = finetune.Params(label_fractions=[1.0], seeds=[0], steps=6, eval_every=3, scenes_per_batch=1,
                                 checkpoint_every=2, cpus_per_worker=cpus, deterministic=True)
        return finetune.run(params, {"scenes": smoke_spine["scenes"], "pretrain": pretrained}, out, scratch=scratch)

    assert_reproduced(run, tmp_path)


@pytest.mark.slow
def test_classification_reruns_bit_identical(tiny_objects, tmp_path):
    def run(out: Path, cpus: int, scratch: Path) -> dict:
        params = classify.Params(variants=[{"init": "scratch", "fip": "all"}], shots=["all"], seeds=[0], epochs=2,
                                 batch_size=4, voxel_size=0.1, checkpoint_every=2, save_models=True,
                                 cpus_per_worker=cpus, deterministic=True)
        return classify.run(params, {"objects": tiny_objects}, out, scratch=scratch)

    assert_reproduced(run, tmp_path)


@pytest.mark.slow
def test_object_fine_tuning_reruns_bit_identical(tiny_objects, tiny_encoders, tmp_path):
    """Drop-path, dropout, sampling and augmentation draw from per-step streams; voting and BatchNorm
    recalibration from their own."""
    def run(out: Path, cpus: int, scratch: Path) -> dict:
        params = finetune_objects.Params(inits=["pretrain_i2p_mae"], seeds=[0], epochs=2, batch_size=4, points=256,
                                         group_sizes=(16, 8, 4), warmup_epochs=1, voting=2, eval_every=1,
                                         recalibrate_batchnorm=True, checkpoint_every=2, save_models=True,
                                         cpus_per_worker=cpus, deterministic=True)
        return finetune_objects.run(params, {"objects": tiny_objects, **tiny_encoders}, out, scratch=scratch)

    assert_reproduced(run, tmp_path)
