"""Shared fixtures: one Ray runtime per test session (worker start-up costs ~15 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local ray.init() may otherwise turn on token auth
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture(scope="session")
def ray_runtime():
    import ray

    from pix2point.engine.cluster import start_local_ray

    for attempt in range(3):
        if ray.is_initialized():
            break
        try:
            start_local_ray(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
        except Exception as error:  # Ray gives its raylet a fixed 30 s to register, too little on a loaded host
            if "timed out during startup" not in str(error) or attempt == 2:
                raise
            ray.shutdown()
    yield ray
    ray.shutdown()


TINY_SYNTHETIC = {"num_scenes": 2, "frames": 4, "color_size": (96, 72), "depth_size": (64, 48), "points": 4000}


@pytest.fixture(scope="session")
def tiny_scenes(ray_runtime, tmp_path_factory):
    """A scenes artefact of two tiny synthetic scenes (one train, one val), built once per session."""
    from stages import scenes

    out = tmp_path_factory.mktemp("tiny_scenes")
    scenes.run(scenes.Params(synthetic=scenes.SyntheticParams(**TINY_SYNTHETIC), val_fraction=0.5), {}, out)
    return out


@pytest.fixture(scope="session")
def smoke_spine(ray_runtime, tmp_path_factory):
    """Artefacts of scenes, features2d and pairs on the smoke profile: stage name -> artefact directory."""
    from pathlib import Path

    from pix2point.engine.artefacts import ArtefactStore
    from pix2point.engine.pipeline import load_pipeline
    from pix2point.engine.runner import run_pipeline

    pipeline = load_pipeline(Path(__file__).resolve().parents[1] / "pipeline.yaml", "smoke")
    outcomes = run_pipeline(pipeline, ArtefactStore(tmp_path_factory.mktemp("smoke_spine")), targets=["pairs"])
    return {outcome.stage: outcome.path for outcome in outcomes}


@pytest.fixture(scope="session")
def tiny_objects(ray_runtime, tmp_path_factory):
    """An objects artefact of 8 synthetic classes, 3 train and 2 test objects each, 256 points per object."""
    from stages import objects

    out = tmp_path_factory.mktemp("tiny_objects")
    synthetic = objects.SyntheticParams(num_classes=8, train_per_class=3, test_per_class=2, seed=0)
    objects.run(objects.Params(synthetic=synthetic, points_per_object=256), {}, out)
    return out


@pytest.fixture
def s3dis_tree(tmp_path):
    """A Stanford3dDataset_v1.2_Aligned_Version tree: rooms of Areas 1, 2 and 5, each a wall and a chair of 40 points."""
    import numpy as np

    root = tmp_path / "Stanford3dDataset_v1.2_Aligned_Version"
    rng = np.random.default_rng(0)
    for area, room in (("Area_1", "office_1"), ("Area_2", "WC_1"), ("Area_5", "office_3")):
        annotations = root / area / room / "Annotations"
        annotations.mkdir(parents=True)
        for name in ("wall_1", "chair_1"):
            rows = np.hstack([rng.uniform(0, 3, (40, 3)), rng.integers(0, 256, (40, 3))])
            np.savetxt(annotations / f"{name}.txt", rows, fmt="%.4f")
    return root


TINY_ENCODER = {"num_groups": (64, 32, 8), "group_sizes": (16, 8, 4), "encoder_dims": (24, 48, 96),
                "encoder_depths": (1, 1, 1), "num_heads": 3, "token_embed_dims": (16, 32, 64)}


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory):
    """Two pretrain artefacts' encoders (encoder.pt + encoder.json, the smoke profile's spec, distinct random
    weights) standing for pretrain_mae and pretrain_i2p_mae: stage name -> directory."""
    import torch

    from pix2point.models.point_m2ae import HierarchicalEncoder, PointM2AESpec, save_encoder

    encoders = {}
    for seed, name in enumerate(("pretrain_mae", "pretrain_i2p_mae")):
        torch.manual_seed(100 + seed)
        encoders[name] = tmp_path_factory.mktemp(name)
        save_encoder(encoders[name], HierarchicalEncoder(PointM2AESpec(**TINY_ENCODER)))
    return encoders


@pytest.fixture
def one_thread():
    """One torch/OpenMP/BLAS thread for the test: MinkowskiEngine's kernel maps then come in a fixed order, so
    a loss curve is the same on every run (training/runtime/determinism.py), and small tensors run several times
    faster than on two threads of a shared machine. torch's count is restored after."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    with threadpool_limits(1):
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(threads)


@pytest.fixture
def encoder_spec():
    """A Point-M2AE encoder small enough for 128-point clouds: 32/16/8 groups of 8/4/4 points."""
    from pix2point.models.point_m2ae import PointM2AESpec

    return PointM2AESpec((32, 16, 8), (8, 4, 4), (24, 48, 96), (1, 1, 1), 3, (16, 32, 64))


@pytest.fixture
def checkpointed_in():
    """`checkpointed_in(scratch, suffix)`: whether a grid trainer under `scratch` has registered (as the checkpoint
    Ray Train restores, not just a folder) a checkpoint taken inside the run whose name ends in `suffix`; a
    test that kills a stage waits for this, so the restart has a checkpoint to resume from."""
    from pix2point.training.runtime.distributed import checkpointed_progress
    from pix2point.training.runtime.trials import RUNS_STORAGE

    def checkpointed(scratch: Path, suffix: str) -> bool:
        folders = scratch / RUNS_STORAGE
        for folder in folders.glob("*") if folders.is_dir() else []:
            try:
                run, step = checkpointed_progress(folders, folder.name)
            except (ValueError, OSError):  # a snapshot being written
                continue
            if run is not None and run.endswith(suffix) and step > 0:
                return True
        return False

    return checkpointed
