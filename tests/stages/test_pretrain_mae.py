"""The pretrain stage with method i2p_mae on a tiny objects artefact and its real views2d artefact (real Ray
Train, real EfficientNet-Lite0 views, real Parquet): what it writes, plain MAE without views, the error for
a run that needs views without them, and resuming a run from its checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from stages import objects, pretrain, views2d

from pix2point.engine.pipeline import PipelineError, validate_params
from pix2point.io.objects_table import read_objects
from pix2point.models.point_m2ae import embed_objects, load_encoder

POINTS = 256
TINY_MODEL = dict(num_groups=(64, 32, 8), group_sizes=(16, 8, 4), encoder_dims=(24, 48, 96), encoder_depths=(1, 1, 1),
                  num_heads=3, token_embed_dims=(16, 32, 64), batch_size=8, checkpoint_every=2, warmup_steps=1)


@pytest.fixture(scope="module")
def inputs(ray_runtime, tmp_path_factory):
    objects_dir, views_dir = tmp_path_factory.mktemp("objects"), tmp_path_factory.mktemp("views2d")
    synthetic = objects.SyntheticParams(num_classes=8, train_per_class=2, test_per_class=1, seed=1)
    objects.run(objects.Params(synthetic=synthetic, points_per_object=POINTS), {}, objects_dir)
    views2d.run(views2d.Params(image_size=64, batch_size=8, objects_per_task=16), {"objects": objects_dir}, views_dir)
    return {"objects": objects_dir, "views2d": views_dir}


def i2p_mae_params(**overrides) -> pretrain.I2PMAEParams:
    return pretrain.I2PMAEParams(**{**TINY_MODEL, "steps": 4, **overrides})


def run_stage(params: pretrain.I2PMAEParams, inputs: dict, tmp_path, name: str = "out", scratch: str = "scratch") -> dict:
    (tmp_path / name).mkdir()  # the engine hands a stage an empty directory
    return pretrain.run(params, inputs, tmp_path / name, scratch=tmp_path / scratch)


def test_full_i2p_mae_writes_a_loadable_encoder_its_spec_and_both_losses(inputs, tmp_path):
    params = i2p_mae_params()
    metrics = run_stage(params, inputs, tmp_path)
    out = tmp_path / "out"
    assert metrics["steps"] == 4 and metrics["resumed_from_step"] == 0
    encoder = load_encoder(out)
    assert encoder.spec == params.encoder_spec()
    loss = pq.read_table(out / "loss.parquet").to_pydict()
    assert loss["step"] == [1, 2, 3, 4]
    assert all(value > 0 and np.isfinite(value) for value in loss["chamfer"] + loss["feature_loss"])
    np.testing.assert_allclose(loss["loss"], np.add(loss["chamfer"], loss["feature_loss"]), rtol=1e-5)
    assert loss["lr"][0] < loss["lr"][1]  # warm-up
    assert json.loads((out / "pretraining.json").read_text()) == {
        "method": "i2p_mae", "masking": "guided", "target_2d": True, "saliency_distribution": "reference", "mask_ratio": 0.8, "steps": 4}
    features = embed_objects(encoder, read_objects(inputs["objects"], "test").points)
    assert features.shape == (8, 96) and np.isfinite(features).all()


def test_plain_masked_autoencoding_needs_only_objects(inputs, tmp_path):
    params = i2p_mae_params(masking="random", target_2d=False)
    run_stage(params, {"objects": inputs["objects"]}, tmp_path)
    loss = pq.read_table(tmp_path / "out" / "loss.parquet").to_pydict()
    assert loss["feature_loss"] == [0.0] * 4 and loss["loss"] == loss["chamfer"]


@pytest.mark.parametrize("overrides, key", [({"masking": "guided", "target_2d": False}, "masking"),
                                            ({"masking": "random", "target_2d": True}, "target_2d")])
def test_a_run_that_needs_views2d_without_it_is_an_error_naming_the_param(inputs, tmp_path, overrides, key):
    with pytest.raises(ValueError, match=f"'{key}'.*'views2d'"):
        run_stage(i2p_mae_params(**overrides), {"objects": inputs["objects"]}, tmp_path)
    assert not (tmp_path / "scratch").exists()  # refused before any worker started


def test_params_pick_the_method_and_reject_keys_of_the_other_one():
    params = validate_params("pretrain_mae", pretrain.Params, {"method": "i2p_mae", "masking": "random"})
    assert isinstance(params, pretrain.I2PMAEParams)
    assert isinstance(validate_params("pretrain", pretrain.Params, {"method": "ppkt"}), pretrain.PPKTParams)
    with pytest.raises(PipelineError, match="stage 'pretrain_mae': unknown param 'voxel_size'"):
        validate_params("pretrain_mae", pretrain.Params, {"method": "i2p_mae", "voxel_size": 0.05})
    with pytest.raises(PipelineError, match="stage 'pretrain_mae'.*encoder_dims .* divisible by num_heads"):
        validate_params("pretrain_mae", pretrain.Params, {"method": "i2p_mae", "encoder_dims": [32, 64, 128]})


def test_a_second_run_with_more_steps_resumes_from_the_first_runs_checkpoint(inputs, tmp_path):
    run_stage(i2p_mae_params(steps=4), inputs, tmp_path, "first")
    first = pq.read_table(tmp_path / "first" / "loss.parquet").to_pydict()
    metrics = run_stage(i2p_mae_params(steps=6), inputs, tmp_path, "second")
    assert metrics["resumed_from_step"] == 4 and metrics["steps"] == 6
    second = pq.read_table(tmp_path / "second" / "loss.parquet").to_pydict()
    assert second["step"] == [1, 2, 3, 4, 5, 6]
    assert second["loss"][:4] == first["loss"]  # the history came from the checkpoint, not a rerun
    # TensorBoard's reader sees the whole history, the resumed part included (issue 15.4)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "second" / "tensorboard" / "i2pmae"))
    events.Reload()
    assert [(event.step, event.value) for event in events.Scalars("train/loss")] == [
        (step, pytest.approx(loss)) for step, loss in zip(second["step"], second["loss"])]
    assert [event.value for event in events.Scalars("train/lr")] == pytest.approx(second["lr"])
    # the resumed weights moved on from the first run's
    first_weights, second_weights = load_encoder(tmp_path / "first").state_dict(), load_encoder(tmp_path / "second").state_dict()
    assert any(not torch.equal(first_weights[key], second_weights[key]) for key in first_weights)


def test_two_workers_train_with_ddp(inputs, tmp_path):
    """DDP checks every parameter gets a gradient; the finest scale's output norm feeds no loss, which the
    training declares (as the original's find_unused_parameters does)."""
    metrics = run_stage(i2p_mae_params(steps=3, num_workers=2, cpus_per_worker=1), inputs, tmp_path)
    assert metrics["steps"] == 3
    loss = pq.read_table(tmp_path / "out" / "loss.parquet").to_pydict()
    assert loss["step"] == [1, 2, 3] and loss["objects"] == [8, 8, 8]  # rank 0's batches
