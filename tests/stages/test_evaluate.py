import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import stages.evaluate
from pix2point.io.arrow import write_table
from pix2point.io.finetune_table import EpochRecord, RunResult, run_name, write_history, write_runs
from pix2point.io.scenes_table import SPLITS_FILE, SPLITS_SCHEMA, read_splits
from pix2point.models.backbone import BackboneSpec, build_backbone, save_backbone
from pix2point.training.pretraining.ppkt import LOSS_FILE

CLASS_NAMES = ["wall", "floor", "chair"]
# (init, label fraction, seed) -> (confusion with rows true and columns predicted, its mIoU by hand)
RUNS = {
    ("scratch", 0.5, 0): ([[6, 4, 0], [4, 6, 0], [0, 0, 0]], 6 / 14),
    ("scratch", 0.5, 1): ([[8, 2, 0], [2, 8, 0], [0, 0, 0]], 8 / 12),
    ("pretrain", 0.5, 0): ([[9, 1, 0], [1, 9, 0], [0, 0, 0]], 9 / 11),
    ("pretrain", 0.5, 1): ([[10, 0, 0], [0, 10, 0], [0, 0, 0]], 1.0),
    ("scratch", 1.0, 0): ([[8, 2, 0], [0, 10, 0], [0, 0, 0]], (8 / 10 + 10 / 12) / 2),
    ("pretrain", 1.0, 0): ([[10, 0, 0], [0, 9, 1], [0, 0, 0]], (1 + 9 / 10 + 0) / 3),  # chair predicted, never true
}
EXPECTED_MIOU = {
    ("scratch", 0.5): (6 / 14 + 8 / 12) / 2, ("pretrain", 0.5): (9 / 11 + 1) / 2,
    ("scratch", 1.0): (8 / 10 + 10 / 12) / 2, ("pretrain", 1.0): (1 + 9 / 10) / 3,
}


def write_pretrain(directory: Path) -> Path:
    directory.mkdir()
    spec = BackboneSpec("tiny", "rgb", 0.05)
    save_backbone(directory, build_backbone(spec), spec)
    steps = np.random.default_rng(0).permutation(np.arange(0, 200, 10))  # a log need not be in step order
    write_table(pa.table({"step": steps, "loss": 8.0 * np.exp(-steps / 100) + 1, "lr": np.full(len(steps), 0.5)}),
                directory / LOSS_FILE)
    return directory


def write_finetune(directory: Path) -> Path:
    results = [RunResult(run_name(init, fraction, seed), init, fraction, seed, epochs=3, final_val_miou=0.5,
                         best_val_miou=0.6, confusion=np.array(confusion)) for (init, fraction, seed), (confusion, _) in RUNS.items()]
    write_runs(directory, results, CLASS_NAMES, label_unit="scenes")
    write_history(directory, [EpochRecord(run.run, epoch, 2.0 - epoch / 2, 0.2 * (epoch + 1), 0.3, 1.5)
                              for run in results for epoch in range(3)])
    return directory


@pytest.fixture(scope="module")
def evaluated(ray_runtime, tiny_scenes, tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    inputs = {"scenes": tiny_scenes, "pretrain": write_pretrain(root / "pretrain"), "finetune": write_finetune(root / "finetune")}
    (root / "out").mkdir()
    terminal = io.StringIO()
    with contextlib.redirect_stdout(terminal):
        metrics = stages.evaluate.run(stages.evaluate.Params(tsne_points=300, tsne_perplexity=10), inputs, root / "out")
    return root / "out", metrics, terminal.getvalue()


def test_report_has_the_table_of_both_inits_and_the_gain(evaluated):
    out, _, _ = evaluated
    report = (out / "report.md").read_text()
    assert "| scratch |" in report and "| pretrain |" in report
    gain_at_half = 100 * (EXPECTED_MIOU[("pretrain", 0.5)] - EXPECTED_MIOU[("scratch", 0.5)])
    assert f"| gain pretrain − scratch | {gain_at_half:+.1f} |" in report
    assert "| chair |" in report  # the per-class IoU table


def test_metrics_json_holds_the_miou_of_each_known_confusion(evaluated):
    out, _, _ = evaluated
    document = json.loads((out / "metrics.json").read_text())
    runs = {run["run"]: run for run in document["runs"]}
    for (init, fraction, seed), (_, miou) in RUNS.items():
        assert runs[run_name(init, fraction, seed)]["miou"] == pytest.approx(miou)
    assert runs[run_name("pretrain", 1.0, 0)]["iou_per_class"]["chair"] == 0.0
    cells = {(cell["init"], cell["label_fraction"]): cell for cell in document["table"]}
    for cell, expected in EXPECTED_MIOU.items():
        assert cells[cell]["miou_mean"] == pytest.approx(expected)
    gains = {gain["label_fraction"]: gain["miou_gain"] for gain in document["gains"]}
    assert gains[1.0] == pytest.approx(EXPECTED_MIOU[("pretrain", 1.0)] - EXPECTED_MIOU[("scratch", 1.0)])
    last_loss = 8.0 * np.exp(-190 / 100) + 1
    assert document["pretrain_loss"] == pytest.approx({"steps": 20, "first": 9.0, "last": last_loss, "minimum": last_loss})


def test_probe_compares_pretrained_random_and_input_features_on_the_validation_scene(evaluated, tiny_scenes):
    out, metrics, _ = evaluated
    probe = json.loads((out / "metrics.json").read_text())["probe"]
    assert probe["scenes"] == [scene for scene, split in read_splits(tiny_scenes).items() if split == "val"]
    assert set(probe["scores"]) == {"pretrained", "random_init", "input_rgb_xyz"}
    assert probe["scores"]["pretrained"]["dimensions"] == 16 and probe["scores"]["input_rgb_xyz"]["dimensions"] == 6
    for score in probe["scores"].values():
        assert 0 < score["points"] <= 300 and 0.0 <= score["accuracy_mean"] <= 1.0
    assert metrics["probe_accuracy"]["pretrained"] == pytest.approx(probe["scores"]["pretrained"]["accuracy_mean"])


def test_every_figure_is_a_png_the_report_links(evaluated):
    out, _, _ = evaluated
    figures = json.loads((out / "metrics.json").read_text())["figures"]
    report = (out / "report.md").read_text()
    expected = {"pretrain_loss.png", "val_miou.png", "tsne.png",
                *(f"confusion_{init}_labels{fraction:g}.png" for init in ("scratch", "pretrain") for fraction in (0.5, 1.0))}
    assert set(figures.values()) == expected
    for name in expected:
        assert (out / name).read_bytes()[:4] == b"\x89PNG" and (out / name).stat().st_size > 5000
        assert f"]({name})" in report


def test_manifest_metrics_and_the_terminal_table(evaluated):
    _, metrics, terminal = evaluated
    assert metrics["miou"]["pretrain@0.5"]["mean"] == pytest.approx(EXPECTED_MIOU[("pretrain", 0.5)])
    assert metrics["miou"]["scratch@0.5"]["seeds"] == 2
    assert set(metrics["gain"]) == {"0.5", "1"}
    json.dumps(metrics, allow_nan=False)
    assert "PPKT evaluation" in terminal and "gain pretrain − scratch" in terminal


def test_an_unknown_split_names_the_splits_present(tiny_scenes):
    with pytest.raises(ValueError, match=r"split 'test'.*\['train', 'val'\]"):
        stages.evaluate.sample_jobs(stages.evaluate.Params(tsne_scenes="test"), tiny_scenes)


def test_points_are_shared_evenly_over_at_most_tsne_max_scenes(tmp_path):
    scenes = [f"scene{i:04d}_00" for i in range(6)]
    write_table(pa.table({"scene": scenes, "split": ["train"] + ["val"] * 5}, schema=SPLITS_SCHEMA), tmp_path / SPLITS_FILE)
    params = stages.evaluate.Params(tsne_points=11, tsne_max_scenes=3, seed=4)

    jobs = stages.evaluate.sample_jobs(params, tmp_path)

    assert [job.points for job in jobs] == [4, 4, 3]
    assert len({job.scene for job in jobs}) == 3 and {job.scene for job in jobs} <= set(scenes[1:])
    assert jobs == stages.evaluate.sample_jobs(params, tmp_path)  # the draw follows the seed


def test_a_pretrain_artefact_without_a_loss_log_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "loss.parquet")):
        stages.evaluate.read_pretrain_loss(tmp_path)


def test_a_loss_log_without_a_loss_column_is_named(tmp_path):
    write_table(pa.table({"step": [1, 2]}), tmp_path / LOSS_FILE)
    with pytest.raises(ValueError, match="columns step and loss"):
        stages.evaluate.read_pretrain_loss(tmp_path)
