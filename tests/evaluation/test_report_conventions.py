"""What every report says and how: the smoke profile's note on top, percent in tables and plots alike, the
I2P-MAE loss plotted as its real terms, "as fast" for equal speed (issue 16 item 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pix2point.engine.pipeline import load_pipeline
from pix2point.evaluation import plots
from pix2point.evaluation.classification_report import _speed_text
from pix2point.evaluation.report_note import add_note
from pix2point.io.classify_table import ClassifyEpoch, ClassifyRun
from pix2point.io.finetune_table import EpochRecord, RunResult
from stages.evaluate_objects import loss_terms

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline.yaml"


@pytest.fixture
def figures(monkeypatch) -> list:
    """The real figures the plot functions draw, captured as they are saved."""
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: drawn.append(figure) or path)
    return drawn


def test_every_report_of_the_smoke_profile_says_its_numbers_mean_nothing_and_the_default_ones_do_not():
    smoke, default = load_pipeline(PIPELINE, "smoke"), load_pipeline(PIPELINE)
    reporting = [name for name, stage in smoke.stages.items() if "report_note" in type(stage.params).model_fields]
    assert {"evaluate", "evaluate_objects", "classify"} <= set(reporting)
    for name in reporting:
        assert "plumbing" in smoke.stages[name].params.report_note and "mean nothing" in smoke.stages[name].params.report_note
        assert default.stages[name].params.report_note == ""


def test_the_note_comes_first(tmp_path):
    report = tmp_path / "report.md"
    report.write_text("# Results\n\n| a |\n")
    add_note(report, "Smoke profile: its numbers mean nothing.")
    assert report.read_text().startswith("> **Note:** Smoke profile: its numbers mean nothing.\n\n# Results")
    add_note(report, "")
    assert report.read_text().count("Note:") == 1


def test_accuracy_and_miou_curves_are_in_percent_like_the_tables(tmp_path, figures):
    classify_run = ClassifyRun("scratch-all-shots1-seed0", "scratch", "all", 1, 0, 8, 100, 0, 2, 0.5, 0.5, 1.0,
                               np.eye(2, dtype=np.int64))
    plots.plot_accuracy_curves([ClassifyEpoch(classify_run.run, epoch, 10 * epoch, 1.0, 0.25 * epoch, 1.0) for epoch in (1, 2)],
                               [classify_run], tmp_path / "accuracy.png")
    finetune_run = RunResult("scratch-0.1-0", "scratch", 0.1, 0, 2, 0.5, 0.5, np.eye(2, dtype=np.int64))
    plots.plot_validation_curves([EpochRecord(finetune_run.run, epoch, 1.0, 0.3 * epoch, 0.2, 1.0) for epoch in (1, 2)],
                                 [finetune_run], tmp_path / "miou.png")
    accuracy_axes, miou_axes = figures[0].axes[0], figures[1].axes[0]
    assert accuracy_axes.get_ylabel() == "test accuracy %" and list(accuracy_axes.lines[0].get_ydata()) == [25.0, 50.0]
    assert miou_axes.get_ylabel() == "validation mIoU %" and list(miou_axes.lines[0].get_ydata()) == pytest.approx([30.0, 60.0])


def test_i2p_mae_loss_is_plotted_as_chamfer_feature_mse_and_their_sum(tmp_path, figures):
    step = np.arange(5)
    chamfer, feature = np.linspace(1.0, 0.5, 5), np.linspace(0.4, 0.2, 5)
    pq.write_table(pa.table({"step": step, "loss": chamfer + feature, "chamfer": chamfer, "feature_loss": feature}), tmp_path / "full.parquet")
    pq.write_table(pa.table({"step": step, "loss": chamfer, "chamfer": chamfer, "feature_loss": 0 * chamfer}), tmp_path / "plain.parquet")
    plots.plot_loss_terms(*loss_terms(tmp_path / "full.parquet"), tmp_path / "full.png")
    plots.plot_loss_terms(*loss_terms(tmp_path / "plain.parquet"), tmp_path / "plain.png")
    full, plain = figures[0].axes[0], figures[1].axes[0]
    assert [line.get_label() for line in full.lines] == [
        "Chamfer L2 (masked points)", "2D feature MSE (visible tokens)", "sum (the loss trained)"]
    assert list(full.lines[2].get_ydata()) == pytest.approx(chamfer + feature)
    assert [line.get_label() for line in plain.lines] == ["Chamfer L2 (masked points)"]
    assert "InfoNCE" not in full.get_ylabel() + plain.get_ylabel()


@pytest.mark.parametrize(("speedup", "text"), [
    (1.0, "reaches 60.0 % as fast"), (1.04, "reaches 60.0 % as fast"), (0.97, "reaches 60.0 % as fast"),
    (1.6, "reaches 60.0 % in 1.6x fewer epochs"), (0.5, "needs 2.0x more epochs to reach 60.0 %"),
])
def test_equal_speed_reads_as_fast(speedup, text):
    assert _speed_text(speedup, 0.6) == text


def tick_labels(axes) -> list[str]:
    axes.figure.canvas.draw()  # tick labels are set at draw time
    return [label.get_text() for label in axes.get_xticklabels() if label.get_text()]


def test_epoch_and_step_axes_have_whole_numbers_even_for_one_epoch(tmp_path, figures):
    """Issue 26 item 8: a one-epoch run's curve was labelled 0.945-1.050 on its epoch axis."""
    run = ClassifyRun("scratch-all-shots1-seed0", "scratch", "all", 1, 0, 8, 100, 0, 1, 0.5, 0.5, 1.0,
                      np.eye(2, dtype=np.int64))
    plots.plot_accuracy_curves([ClassifyEpoch(run.run, 1, 4, 1.0, 0.5, 1.0)], [run], tmp_path / "accuracy.png")
    finetune_run = RunResult("scratch-0.1-0", "scratch", 0.1, 0, 1, 0.5, 0.5, np.eye(2, dtype=np.int64))
    plots.plot_validation_curves([EpochRecord(finetune_run.run, 1, 1.0, 0.3, 0.2, 1.0)], [finetune_run],
                                 tmp_path / "miou.png")
    plots.plot_loss_terms(np.arange(1, 5), {"Chamfer L2": np.linspace(1.0, 0.5, 4)}, tmp_path / "loss.png")
    for figure in figures:
        labels = tick_labels(figure.axes[0])
        assert labels and all(label.lstrip("−-").isdigit() for label in labels), labels
