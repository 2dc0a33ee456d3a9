import io
import json
from dataclasses import replace

import numpy as np
from rich.console import Console

from pix2point.evaluation.feature_probe import ProbeScore
from pix2point.evaluation.segmentation_report import (
    Evaluation,
    LossSummary,
    manifest_metrics,
    miou_table_rows,
    print_summary,
    report_markdown,
    write_report,
)
from pix2point.evaluation.segmentation_summary import finetune_drift, pretraining_verdicts, score_runs, summarise_cells
from pix2point.io.finetune_table import RunResult

# scratch: mIoU (1/3 + 1/3) / 2 = 1/3 at both seeds; pretrain: 1 at its only seed. Class 2 is never seen.
POOR = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0]])
PERFECT = np.diag([2, 2, 0])


def evaluation() -> Evaluation:
    runs = score_runs([
        RunResult("scratch-0", "scratch", 0.5, 0, 2, 0.3, 0.4, POOR),
        RunResult("scratch-1", "scratch", 0.5, 1, 2, 0.3, 0.4, POOR),
        RunResult("pretrain-0", "pretrain", 0.5, 0, 2, 0.9, 0.9, PERFECT),
        RunResult("scratch-full", "scratch", 1.0, 0, 2, 0.3, 0.4, POOR),
    ])
    cells = summarise_cells(runs)
    return Evaluation(
        class_names=["wall", "floor", "chair"], label_unit="scenes", runs=runs, cells=cells,
        verdicts=pretraining_verdicts(cells), pretrain_loss=LossSummary(10, 4.0, 1.5, 1.4),
        probes=[ProbeScore("pretrained", 16, 100, 2, 0.8, 0.05, 0.75, 0.04)],
        probe_split="val", probe_scenes=["scene0001_00"], figures={"Pretraining loss": "pretrain_loss.png"},
    )


def test_table_rows_put_inits_against_label_fractions_with_a_gain_row():
    header, rows = miou_table_rows(evaluation())
    assert header == ["init", "labels 0.5", "labels 1"]
    assert rows[0] == ["scratch", "33.3 ± 0.0 (n=2)", "33.3 (n=1)"]
    assert rows[1] == ["pretrain", "100.0 (n=1)", "–"]
    assert rows[2] == ["gain pretrain − scratch", "+66.7", "–"]


def test_metrics_json_is_strict_json_with_null_for_undefined_scores(tmp_path):
    write_report(tmp_path, evaluation())
    document = json.loads((tmp_path / "metrics.json").read_text())
    assert document["table"][1]["miou_std"] is None  # one seed: no spread
    assert document["table"][0]["iou_per_class_mean"] == {"wall": 1 / 3, "floor": 1 / 3, "chair": None}
    (gain,) = document["gains"]
    assert gain["label_fraction"] == 0.5 and gain["miou_gain"] == 1 - 1 / 3
    assert gain["verdict"] == "unresolved" and gain["candidate_seeds"] == 1 and gain["p_value"] is None
    assert document["runs"][2]["confusion"] == PERFECT.tolist()
    assert (tmp_path / "report.md").read_text() == report_markdown(evaluation())


def test_pretrain_against_scratch_has_a_verdict_with_its_seed_counts_and_logged_scores_are_percent():
    text = report_markdown(evaluation())
    assert "| 0.5 | pretrain vs scratch | +66.7 | – / 0.0 | 1 / 2 | – | **unresolved** |" in text
    assert "Welch's t-test over seeds" in text
    assert "| 30.0 / 40.0 |" in text and "0.3000" not in text  # the logged mIoU, in the table's unit


def test_report_links_figures_and_shows_the_probe():
    text = report_markdown(evaluation())
    assert "![Pretraining loss](pretrain_loss.png)" in text
    assert "| pretrained |" in text and "80.0 ± 5.0" in text


def test_manifest_metrics_and_terminal_table():
    metrics = manifest_metrics(evaluation())
    assert metrics["miou"]["pretrain@0.5"] == {"mean": 1.0, "std": None, "seeds": 1}
    assert metrics["gain"] == {"0.5": 1 - 1 / 3} and metrics["verdict"] == {"0.5": "unresolved"}
    assert metrics["probe_accuracy"] == {"pretrained": 0.8}
    json.dumps(metrics, allow_nan=False)
    terminal = io.StringIO()
    print_summary(evaluation(), Console(file=terminal, width=200))
    assert "gain pretrain − scratch" in terminal.getvalue() and "+66.7" in terminal.getvalue()


def test_per_class_table_leaves_out_classes_no_run_saw():
    text = report_markdown(evaluation())
    assert "| wall |" in text and "| chair |" not in text
    assert "Left out, neither true nor predicted in any run: chair." in text


def test_a_gain_that_rounds_to_zero_is_shown_without_a_minus_sign():
    rounded = replace(evaluation().verdicts[0.5], gap=-1e-17)
    _, rows = miou_table_rows(replace(evaluation(), verdicts={0.5: rounded}))
    assert rows[-1][1] == "+0.0"


def test_report_says_what_the_label_budget_counts():
    assert "a label fraction is the share of training scenes whose labels" in report_markdown(evaluation())
    per_scene = report_markdown(replace(evaluation(), label_unit="points_per_scene"))
    assert "labels N means finetuning used N labelled points of each training scene." in per_scene

def test_a_repeated_run_reports_its_drift_next_to_the_seed_spread(tmp_path):
    runs = [RunResult("scratch-0", "scratch", 0.5, 0, 2, 0.3, 0.4, POOR),
            RunResult("scratch-1", "scratch", 0.5, 1, 2, 0.3, 0.4, PERFECT),
            RunResult("scratch-0-repeat1", "scratch", 0.5, 0, 2, 0.3, 0.4, PERFECT, repeat=1)]
    drift = finetune_drift(runs)
    assert drift.run == "scratch-0" and drift.scores == (1 / 3, 1.0)  # recomputed mIoU, not the logged 0.3
    assert np.isclose(drift.std, np.std([1 / 3, 1.0], ddof=1)) and np.isclose(drift.seed_std, drift.std)
    write_report(tmp_path, replace(evaluation(), drift=drift))
    assert "run scratch-0 trained 2 times with the same seed and data gave validation mIoU 33.3, 100.0 %" in (
        tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "metrics.json").read_text())["drift"]["scores"] == [1 / 3, 1.0]
    assert finetune_drift(runs[:2]) is None
    assert "Run-to-run drift: none." in report_markdown(replace(evaluation(), deterministic=True))
