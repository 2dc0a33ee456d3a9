"""The classify stage on tiny objects: every run lands in the contract, FIP io leaves the inflated trunk as
inflation made it, and the report is written."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from stages import classify

from pix2point.io.classify_table import model_path, read_history, read_runs, runs_metadata
from pix2point.models.object_classifier import build_classifier
from pix2point.training.finetuning.classification import ClassifyConfig


@pytest.fixture(scope="module")
def classified(tiny_objects, tmp_path_factory):
    out = tmp_path_factory.mktemp("classify")
    params = classify.Params(
        variants=[{"init": "scratch", "fip": "all"}, {"init": "inflated", "fip": "io"}],
        shots=[1, "all"], seeds=[0], epochs=2, batch_size=4, voxel_size=0.1, cpus_per_worker=2,
        checkpoint_every=3, save_models=True, target_accuracy=0.3, drift_repeats=0, io_learning_rate=0.02)
    metrics = classify.run(params, {"objects": tiny_objects}, out, scratch=out.parent / f"{out.name}-scratch")
    return params, out, metrics


@pytest.mark.slow
def test_every_run_and_epoch_lands_in_the_contract(classified, tiny_objects):
    params, out, metrics = classified
    runs = read_runs(out)
    assert metrics["runs"] == 4 and len(runs) == 4
    assert {(run.init, run.fip, run.shots) for run in runs} == {
        ("scratch", "all", 1), ("scratch", "all", None), ("inflated", "io", 1), ("inflated", "io", None)}
    names, network, epoch_steps = runs_metadata(out)
    assert len(names) == 8 and network == "efficientnet_lite0"
    assert epoch_steps == 6  # 24 training objects, 4 per step, one worker
    for run in runs:
        assert run.train_objects == (8 if run.shots == 1 else 24)
        assert run.confusion.shape == (8, 8) and run.confusion.sum() == 16  # every test object scored once
        assert 0 <= run.final_accuracy <= run.best_accuracy <= 1
        assert model_path(out, run.run).is_file()
    history = read_history(out)
    assert sorted((record.run, record.epoch) for record in history) == sorted(
        (run.run, epoch) for run in runs for epoch in (1, 2))
    assert all(record.step == 6 * record.epoch and np.isfinite(record.train_loss) for record in history)
    assert pq.read_schema(out / "runs.parquet").field("shots").nullable


@pytest.mark.slow
def test_fip_io_trains_only_the_new_layers(classified):
    _, out, _ = classified
    runs = {(run.init, run.fip, run.shots): run for run in read_runs(out)}
    fresh, _ = build_classifier(classify.classifier_spec(classify.Params(), 8), "inflated")
    inflated = fresh.state_dict()
    trained = torch.load(model_path(out, runs[("inflated", "io", None)].run), weights_only=True)
    trunk = [key for key in inflated if key.startswith("trunk.")]
    assert trunk and all(torch.equal(trained[key], inflated[key]) for key in trunk)  # running stats included
    assert runs[("inflated", "io", None)].trainable_parameters < runs[("scratch", "all", None)].trainable_parameters / 100
    new_layers = [key for key in inflated if key.startswith(("stem.", "classifier.")) and "num_batches" not in key]
    assert any(not torch.equal(trained[key], inflated[key]) for key in new_layers)


@pytest.mark.slow
def test_report_and_metrics_are_written(classified):
    _, out, metrics = classified
    document = json.loads((out / "metrics.json").read_text())
    assert len(document["cells"]) == 4 and len(document["comparisons"]) == 2
    assert set(metrics["accuracy"]) == {"scratch/all/shots1", "inflated/io/shots1", "scratch/all/shotsall",
                                        "inflated/io/shotsall"}
    report = (out / "report.md").read_text()
    assert "| inflated | io | 1 |" in report and "## Verdicts: final test accuracy" in report


def test_fip_io_runs_take_their_own_learning_rate_and_scratch_io_is_a_default_variant():
    params = classify.Params(io_learning_rate=0.01)
    assert {"init": "scratch", "fip": "io"} in [variant.model_dump() for variant in params.variants]
    config = ClassifyConfig(objects_dir=Path("objects"), out=Path("out"), classifier=None, class_names=(), runs=(),
                            epochs=1, batch_size=1, voxel_size=0.1, voxel_rounding="round",
                            learning_rate=params.learning_rate, momentum=0.9, weight_decay=0.0, augmentation=None,
                            checkpoint_every=1, save_models=False, io_learning_rate=params.io_learning_rate)
    assert (config.learning_rate_for("io"), config.learning_rate_for("iobn"), config.learning_rate_for("all")) == (0.01, 0.1, 0.1)
    assert replace(config, io_learning_rate=None).learning_rate_for("io") == 0.1  # unset: the reference's one rate
    with pytest.raises(ValueError, match="io_learning_rate"):
        classify.Params(io_learning_rate=0)


def test_params_reject_repeats_and_bad_shots():
    with pytest.raises(ValueError, match="must not repeat"):
        classify.Params(variants=[{"init": "scratch"}, {"init": "scratch", "fip": "all"}])
    with pytest.raises(ValueError, match="shots must be positive"):
        classify.Params(shots=[0, "all"])
    with pytest.raises(ValueError, match="fip"):
        classify.Params(variants=[{"init": "inflated", "fip": "none"}])


@pytest.mark.slow
def test_tensorboard_events_hold_each_runs_loss_lr_and_test_accuracy(classified):
    """Issue 15.4, read back with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    params, out, _ = classified
    history = read_history(out)
    runs = sorted({record.run for record in history})
    fips = {run.run: run.fip for run in read_runs(out)}
    assert sorted(path.name for path in (out / "tensorboard").iterdir()) == runs
    for run in runs:
        events = EventAccumulator(str(out / "tensorboard" / run))
        events.Reload()
        epochs = [record for record in history if record.run == run]
        loss, lr = events.Scalars("train/loss"), events.Scalars("train/lr")
        assert [event.step for event in loss] == list(range(1, epochs[-1].step + 1)) == [event.step for event in lr]
        peak = params.io_learning_rate if fips[run] == "io" else params.learning_rate
        assert lr[0].value == pytest.approx(peak) and lr[-1].value < lr[0].value  # cosine decay from the run's own peak
        accuracy = events.Scalars("test/accuracy")
        assert [(event.step, event.value) for event in accuracy] == [
            (record.step, pytest.approx(record.test_accuracy)) for record in epochs]


def test_drift_repeats_rerun_the_first_run_in_normal_mode_only():
    params = classify.Params(variants=[{"init": "scratch", "fip": "all"}], shots=[1, "all"], seeds=[0, 1], drift_repeats=2,
                            deterministic=False)
    specs = classify.run_specs(params)
    grid, repeats = specs[:4], specs[4:]
    assert [spec.repeat for spec in grid] == [0] * 4 and len({spec.name for spec in specs}) == 6
    assert [(spec.name, spec.seed, spec.shots, spec.repeat) for spec in repeats] == [
        (f"{grid[0].name}-repeat1", 0, 1, 1), (f"{grid[0].name}-repeat2", 0, 1, 2)]
    assert classify.run_specs(params.model_copy(update={"deterministic": True})) == grid
