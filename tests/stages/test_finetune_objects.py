"""The finetune_objects stage on tiny objects: every run lands in the contract, with voting and per-init
mean ± std in the report, TensorBoard curves, and clear errors for inputs and params that cannot work."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from stages import finetune_objects

from pix2point.io.classify_table import read_history
from pix2point.io.finetune_objects_table import model_path, read_runs, runs_metadata
from pix2point.io.trials_table import read_trials

SMALL = {"epochs": 2, "batch_size": 8, "points": 256, "group_sizes": (16, 8, 4), "voting": 2, "eval_every": 1,
         "warmup_epochs": 1, "checkpoint_every": 2, "cpus_per_worker": 1, "recalibrate_batchnorm": True}


@pytest.fixture(scope="module")
def finetuned(tiny_objects, tiny_encoders, tmp_path_factory):
    out = tmp_path_factory.mktemp("finetune_objects")
    params = finetune_objects.Params(inits=["scratch", "pretrain_i2p_mae"], seeds=[0, 1], save_models=True,
                                     deterministic=True, **SMALL)
    inputs = {"objects": tiny_objects, **tiny_encoders}
    metrics = finetune_objects.run(params, inputs, out, scratch=out.parent / f"{out.name}-scratch")
    return params, out, metrics


@pytest.mark.slow
def test_every_run_lands_in_the_contract_with_voting(finetuned, tiny_encoders):
    params, out, metrics = finetuned
    runs = read_runs(out)
    assert sorted((run.init, run.seed) for run in runs) == [("pretrain_i2p_mae", 0), ("pretrain_i2p_mae", 1),
                                                           ("scratch", 0), ("scratch", 1)]
    for run in runs:
        assert run.train_objects == 24 and run.epochs == 2 and run.votes == 2 and run.repeat == 0
        assert run.confusion.shape == (8, 8) and run.confusion.sum() == 16  # every test object scored once
        assert 0 <= run.final_accuracy <= run.best_accuracy <= 1 and run.best_epoch in (1, 2)
        assert run.vote_accuracy is not None and 0 <= run.vote_accuracy <= 1
        assert model_path(out, run.run).is_file()
    history = read_history(out)
    assert sorted((record.run, record.epoch, record.step) for record in history) == sorted(
        (run.run, epoch, 3 * epoch) for run in runs for epoch in (1, 2))  # 24 objects, 8 per step
    assert all(np.isfinite(record.train_loss) for record in history)
    metadata = runs_metadata(out)
    assert metadata["deterministic"] is True and metadata["encoder"]["group_sizes"] == [16, 8, 4]
    assert [trial.run for trial in read_trials(out)] == [run.run for run in runs]
    assert set(metrics["accuracy"]) == {"scratch", "pretrain_i2p_mae"}


@pytest.mark.slow
def test_the_pretrained_runs_fine_tune_the_given_encoder(finetuned, tiny_encoders):
    _, out, _ = finetuned
    pretrained = torch.load(tiny_encoders["pretrain_i2p_mae"] / "encoder.pt", weights_only=True)
    trained = {init: torch.load(model_path(out, f"{init}-seed0"), weights_only=True) for init in ("scratch", "pretrain_i2p_mae")}
    # Token-embedding weights move little in 6 AdamW steps: the fine-tuned run stays near its start, scratch does not.
    key = "token_embeds.0.first.0.weight"
    near = (trained["pretrain_i2p_mae"][f"encoder.{key}"] - pretrained[key]).abs().max()
    far = (trained["scratch"][f"encoder.{key}"] - pretrained[key]).abs().max()
    assert near < 0.05 < far


@pytest.mark.slow
def test_report_gives_mean_and_std_over_seeds_with_and_without_voting(finetuned):
    _, out, _ = finetuned
    document = json.loads((out / "metrics.json").read_text())
    cells = {cell["init"]: cell for cell in document["inits"]}
    runs = read_runs(out)
    for init, cell in cells.items():
        mine = sorted((run for run in runs if run.init == init), key=lambda run: run.seed)
        assert cell["accuracy_mean"] == pytest.approx(np.mean([run.final_accuracy for run in mine]))
        assert cell["accuracy_std"] == pytest.approx(np.std([run.final_accuracy for run in mine], ddof=1))
        assert cell["vote_accuracy_mean"] == pytest.approx(np.mean([run.vote_accuracy for run in mine]))
    report = (out / "report.md").read_text()
    assert "| scratch (random init) |" in report and "| I2P-MAE (2D-guided) |" in report
    assert "with voting (2 copies) %" in report and "(n=2)" in report and "deterministic mode" in report
    assert (out / "accuracy.png").is_file()


@pytest.mark.slow
def test_tensorboard_holds_loss_lr_test_and_vote_accuracy(finetuned):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, out, _ = finetuned
    runs = read_runs(out)
    assert sorted(path.name for path in (out / "tensorboard").iterdir()) == sorted(run.run for run in runs)
    for run in runs:
        events = EventAccumulator(str(out / "tensorboard" / run.run))
        events.Reload()
        assert [event.step for event in events.Scalars("train/loss")] == list(range(1, 7))
        assert [event.step for event in events.Scalars("test/accuracy")] == [3, 6]
        (vote,) = events.Scalars("test/vote_accuracy")
        assert vote.value == pytest.approx(run.vote_accuracy)


def test_params_and_inputs_that_cannot_work_are_errors_naming_them(tiny_objects, tiny_encoders, tmp_path):
    def config(inputs=None, **params):
        merged = {**SMALL, **params}
        return finetune_objects.finetune_config(finetune_objects.Params(**merged),
                                                inputs or {"objects": tiny_objects, **tiny_encoders}, tmp_path)

    assert config().spec.group_sizes == (16, 8, 4)
    with pytest.raises(ValueError, match=r"inits \['pretrain_mae'\] start from the stages"):
        config({"objects": tiny_objects, "pretrain_i2p_mae": tiny_encoders["pretrain_i2p_mae"]})
    with pytest.raises(ValueError, match="points=512 exceeds the 256 points per object"):
        config(points=512)
    with pytest.raises(ValueError, match="local_radius .* one entry per encoder scale"):
        config(local_radius=(0.5, 1.0))
    with pytest.raises(ValueError, match="param group_sizes"):
        config(group_sizes=(16, 80, 4))
    with pytest.raises(ValueError, match="must not repeat"):
        finetune_objects.Params(seeds=[0, 0])
    with pytest.raises(ValueError, match="batch_size"):
        finetune_objects.Params(batch_size=1)


def test_run_specs_seed_outermost_and_drift_repeats_only_in_normal_mode():
    params = finetune_objects.Params(inits=["scratch", "pretrain_mae"], seeds=[0, 1], drift_repeats=1,
                                     deterministic=False)
    names = [spec.name for spec in finetune_objects.run_specs(params)]
    assert names == ["scratch-seed0", "pretrain_mae-seed0", "scratch-seed1", "pretrain_mae-seed1", "scratch-seed0-repeat1"]
    assert len(finetune_objects.run_specs(params.model_copy(update={"deterministic": True}))) == 4
    assert not math.isnan(params.learning_rate)
