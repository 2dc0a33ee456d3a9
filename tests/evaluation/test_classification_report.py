"""The classify report: cells over seeds, epochs to a target, and the verdicts against scratch and against
the same FIP mode on random weights."""

import json
import math

import numpy as np

from pix2point.evaluation.classification_report import (
    compare_with_baseline, compare_with_random_weights, epochs_to_reach, summarise, write_report,
)
from pix2point.io.classify_table import ClassifyEpoch, ClassifyRun, run_name


def fake_run(init, fip, shots, seed, curve):
    """A run whose per-epoch test accuracies are `curve` (results as the stage would record them)."""
    name = run_name(init, fip, shots, seed)
    confusion = np.diag([10, 10]).astype(np.int64)
    run = ClassifyRun(name, init, fip, shots, seed, 8, 100, 0, len(curve), curve[-1], max(curve), 1.0, confusion)
    history = [ClassifyEpoch(name, epoch + 1, 10 * (epoch + 1), 1.0, accuracy, 1.0)
               for epoch, accuracy in enumerate(curve)]
    return run, history


def experiment():
    pieces = [
        fake_run("scratch", "all", 1, 0, [0.2, 0.4, 0.6]),
        fake_run("scratch", "all", 1, 1, [0.2, 0.5, 0.8]),
        fake_run("inflated", "io", 1, 0, [0.6, 0.8, 0.8]),
        fake_run("inflated", "io", 1, 1, [0.7, 0.7, 0.9]),
        fake_run("scratch", "all", None, 0, [0.5, 0.9, 0.95]),
        fake_run("inflated", "io", None, 0, [0.4, 0.6, 0.85]),
    ]
    return [run for run, _ in pieces], [record for _, history in pieces for record in history]


def test_epochs_to_reach_is_the_first_epoch_at_or_above_the_target():
    _, history = fake_run("scratch", "all", 1, 0, [0.3, 0.7, 0.65, 0.9])
    assert epochs_to_reach(history, 0.7) == 2
    assert epochs_to_reach(history, 0.95) is None


def test_cells_aggregate_seeds_and_order_few_shots_first_baseline_first():
    runs, history = experiment()
    cells = summarise(runs, history, target=0.8)
    assert [(c.init, c.fip, c.shots) for c in cells] == [
        ("scratch", "all", 1), ("inflated", "io", 1), ("scratch", "all", None), ("inflated", "io", None)]
    scratch_one_shot = cells[0]
    assert math.isclose(scratch_one_shot.accuracy_mean, 0.7)
    assert math.isclose(scratch_one_shot.accuracy_std, np.std([0.6, 0.8], ddof=1))
    assert scratch_one_shot.epochs_to_target == (None, 3)
    assert cells[1].epochs_to_target == (2, 3) and cells[1].mean_epochs_to_target == 2.5
    assert math.isnan(cells[3].accuracy_std)  # one seed: no spread


def test_comparison_gives_gain_and_speedup_against_scratch():
    runs, history = experiment()
    one_shot, all_shots = compare_with_baseline(summarise(runs, history, target=0.8))
    assert one_shot.variant == ("inflated", "io") and one_shot.shots == 1
    assert math.isclose(one_shot.accuracy_gain, 0.85 - 0.7)
    assert math.isclose(one_shot.speedup, 3 / 2.5)
    assert math.isclose(all_shots.accuracy_gain, 0.85 - 0.95)
    assert math.isclose(all_shots.speedup, 2 / 3)


def test_report_gives_each_comparison_its_verdict_and_metrics_are_strict_json(tmp_path):
    runs, history = experiment()
    metrics = write_report(tmp_path, runs, history, target=0.8, network="efficientnet_lite0")
    report = (tmp_path / "report.md").read_text()
    # 1 shot: 0.85 ± 0.07 vs 0.7 ± 0.14 over 2 seeds each overlaps; all shots: one seed each
    assert ("| 1 | inflated/io | scratch/all | reaches 80.0 % in 1.2x fewer epochs | +15.0 | 7.1 / 14.1 | 2 / 2 | "
            "0.350 | **unresolved** |") in report
    assert ("| all | inflated/io | scratch/all | needs 1.5x more epochs to reach 80.0 % | -10.0 | – / – | 1 / 1 | – | "
            "**unresolved** |") in report
    assert "wins" not in report and "loses" not in report
    assert "| scratch | all | 1 | 70.0 ± 14.1 (n=2) |" in report
    document = json.loads((tmp_path / "metrics.json").read_text())
    assert document["cells"][0]["epochs_to_target"] == [None, 3]
    assert document["cells"][3]["accuracy_std"] is None
    assert document["comparisons"][0]["verdict"] == "unresolved" and document["comparisons"][0]["candidate_seeds"] == 2
    assert math.isclose(metrics["accuracy"]["inflated/io/shots1"], 0.85)
    assert (tmp_path / "accuracy.png").stat().st_size > 10_000


def test_inflated_io_is_compared_with_scratch_io_the_random_frozen_trunk_and_a_clear_gap_resolves(tmp_path):
    pieces = [fake_run("scratch", "all", 1, seed, [0.5, 0.5 + 0.01 * seed]) for seed in range(3)]
    pieces += [fake_run("scratch", "io", 1, seed, [0.3, 0.30 + 0.01 * seed]) for seed in range(3)]
    pieces += [fake_run("inflated", "io", 1, seed, [0.6, 0.70 + 0.01 * seed]) for seed in range(3)]
    runs, history = [run for run, _ in pieces], [record for _, h in pieces for record in h]
    cells = summarise(runs, history, target=0.6)
    (control,) = compare_with_random_weights(cells)
    assert control.variant == ("inflated", "io") and control.baseline == ("scratch", "io")
    assert math.isclose(control.accuracy_gain, 0.4) and control.verdict.outcome == "ahead"
    against_scratch = {c.variant: c.verdict.outcome for c in compare_with_baseline(cells)}
    assert against_scratch == {("scratch", "io"): "behind", ("inflated", "io"): "ahead"}
    write_report(tmp_path, runs, history, target=0.6, network="efficientnet_lite0",
                 learning_rates={"all": 0.1, "io": 0.01})
    report = (tmp_path / "report.md").read_text()
    assert "Peak learning rate (cosine-annealed to 0): FIP all 0.1, FIP io 0.01." in report
    assert "| 1 | inflated/io | scratch/io |" in report and "**ahead** |" in report and "**behind** |" in report


def test_drift_repeats_stay_out_of_the_cells_and_are_reported_against_the_seed_spread(tmp_path):
    runs, history = experiment()
    original = runs[0]  # scratch/all, 1 shot, seed 0: final 0.6; its cell's seeds end at 0.6 and 0.8
    for k, accuracy in ((1, 0.62), (2, 0.58)):
        name = f"{original.run}-repeat{k}"
        runs.append(ClassifyRun(name, "scratch", "all", 1, 0, 8, 100, 0, 1, accuracy, accuracy, 1.0,
                                original.confusion, repeat=k))
        history.append(ClassifyEpoch(name, 1, 10, 1.0, accuracy, 1.0))
    write_report(tmp_path, runs, history, target=0.8, network="efficientnet_lite0")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    first_cell = metrics["cells"][0]
    assert first_cell["seeds"] == [0, 1] and math.isclose(first_cell["accuracy_mean"], 0.7)  # repeats left out
    drift = metrics["drift"]
    assert drift["run"] == original.run and drift["scores"] == [0.6, 0.62, 0.58]
    assert math.isclose(drift["std"], 0.02) and math.isclose(drift["seed_std"], np.std([0.6, 0.8], ddof=1))
    report = (tmp_path / "report.md").read_text()
    assert f"run {original.run} trained 3 times with the same seed" in report
    assert "± 2.00 points (sample std), against ± 14.14 over seeds in its cell" in report


def test_a_deterministic_report_says_there_is_no_drift(tmp_path):
    runs, history = experiment()
    write_report(tmp_path, runs, history, target=0.8, network="efficientnet_lite0", deterministic=True)
    assert "Run-to-run drift: none. The stage ran in deterministic mode" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "metrics.json").read_text())["drift"] == {"deterministic": True, "run": None}
