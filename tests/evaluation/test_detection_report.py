"""The detect stage's report: cells per (init, label fraction), spread over seeds, gains, per-class AP."""

import math

import numpy as np

from pix2point.evaluation.detection_report import summarise, verdicts_metrics, write_report
from pix2point.io.detect_table import DetectRunResult

NAN = float("nan")
CLASSES = ["chair", "table", "sofa"]


def result(init, fraction, seed, map25, map50, ap25):
    return DetectRunResult(run=f"{init}-{fraction}-{seed}", init=init, label_fraction=fraction, seed=seed,
                           evaluations=2, resumed_from_step=0, map25=map25, map50=map50, best_map25=map25,
                           ap25=ap25, ap50=[0.0] * len(ap25))


RESULTS = [  # given out of order: the report sorts scratch first, then by label fraction and seed
    result("pretrain", 1.0, 1, 0.50, 0.20, [0.6, 0.4, None]),
    result("scratch", 1.0, 0, 0.30, 0.10, [0.4, 0.2, None]),
    result("pretrain", 1.0, 0, 0.40, 0.10, [0.5, 0.3, None]),
    result("scratch", 1.0, 1, 0.10, 0.00, [0.1, 0.1, None]),
    result("scratch", 0.5, 0, 0.05, 0.00, [0.1, 0.0, None]),
]


def test_cells_group_runs_by_init_and_fraction_with_mean_and_sample_std():
    cells = summarise(RESULTS)
    assert [(c.init, c.label_fraction, c.seeds) for c in cells] == [
        ("scratch", 0.5, (0,)), ("scratch", 1.0, (0, 1)), ("pretrain", 1.0, (0, 1))]
    mean, std = cells[1].spread(cells[1].map25)
    assert math.isclose(mean, 0.2) and math.isclose(std, np.std([0.3, 0.1], ddof=1))
    assert math.isnan(cells[0].spread(cells[0].map25)[1])  # one seed: no spread
    np.testing.assert_allclose(cells[2].ap25_mean[:2], [0.55, 0.35])
    assert math.isnan(cells[2].ap25_mean[2])  # no validation box of this class in any run
    assert cells[2].as_metrics()["map25_std"] is not None and cells[0].as_metrics()["map25_std"] is None


def test_report_gives_the_verdict_at_each_fraction_with_both_inits_and_leaves_out_classes_without_boxes(tmp_path):
    path = tmp_path / "report.md"
    write_report(path, summarise(RESULTS), RESULTS, CLASSES)
    text = path.read_text()
    assert "| scratch | 1 | 20.0 ± 14.1 (n=2) | 5.0 ± 7.1 (n=2) |" in text
    assert "| pretrain | 1 | 45.0 ± 7.1 (n=2) | 15.0 ± 7.1 (n=2) |" in text
    verdicts = text.split("## Pretrained against scratch")[1].split("##")[0]
    # 45 ± 7.1 against 20 ± 14.1 over 2 seeds each: a gap, but no verdict
    assert "| 1 | pretrain vs scratch, mAP@0.25 | +25.0 | 7.1 / 14.1 | 2 / 2 | 0.199 | **unresolved** |" in verdicts
    assert "| 0.5 |" not in verdicts  # 0.5 has no pretrained cell
    per_class = text.split("## AP@0.25 per class")[1].split("##")[0]
    assert "chair" in per_class and "table" in per_class and "sofa" not in per_class
    assert "| pretrain @ 1 | 55.0 | 35.0 |" in per_class
    assert text.count("| scratch-1.0-0 |") == 1


def test_a_clear_map_gap_over_three_seeds_is_ahead_and_goes_to_the_manifest():
    results = [result(init, 1.0, seed, base + 0.01 * seed, 0.1, [base]) for seed in range(3)
               for init, base in (("scratch", 0.10), ("pretrain", 0.30))]
    metrics = verdicts_metrics(summarise(results))
    assert metrics["1"]["verdict"] == "ahead" and math.isclose(metrics["1"]["gap"], 0.2)
    assert metrics["1"]["map50_gap"] == 0.0 and metrics["1"]["candidate_seeds"] == 3


def test_drift_repeats_stay_out_of_the_cells_and_feed_the_drift_paragraph(tmp_path):
    repeat = result("scratch", 1.0, 0, 0.26, 0.10, [0.3, 0.2, None])
    repeat = DetectRunResult(**{**repeat.__dict__, "run": "scratch-1.0-0-repeat1", "repeat": 1})
    results = [*RESULTS, repeat]
    path = tmp_path / "report.md"
    write_report(path, summarise([r for r in results if r.repeat == 0]), results, CLASSES)
    text = path.read_text()
    assert "| scratch | 1 | 20.0 ± 14.1 (n=2) |" in text  # the cell is the grid's, repeat left out
    assert "run scratch-1.0-0 trained 2 times with the same seed" in text and "30.0, 26.0" in text
    deterministic = tmp_path / "deterministic.md"
    write_report(deterministic, summarise(RESULTS), RESULTS, CLASSES, deterministic=True)
    assert "Run-to-run drift: none" in deterministic.read_text()
