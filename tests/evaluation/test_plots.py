import matplotlib.image
import numpy as np
import pytest

from pix2point.evaluation.plots import plot_confusion, plot_pretrain_loss, plot_tsne, plot_validation_curves
from pix2point.io.finetune_table import EpochRecord, RunResult

CLASS_NAMES = ["wall", "floor", "chair"]


def assert_drawn_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels[..., :3].std() > 0.01  # not a blank canvas


def finetune_run(init: str, label_fraction: float, seed: int) -> RunResult:
    return RunResult(f"{init}-{label_fraction}-{seed}", init, label_fraction, seed, 3, 0.5, 0.5, np.eye(3, dtype=np.int64))


def test_pretrain_loss_curve(tmp_path):
    step = np.arange(50)
    assert_drawn_png(plot_pretrain_loss(step, 5 * np.exp(-step / 20), tmp_path / "loss.png"))


def test_validation_curves_of_every_run(tmp_path):
    runs = [finetune_run(init, fraction, 0) for init in ("scratch", "pretrain") for fraction in (0.1, 1.0)]
    history = [EpochRecord(run.run, epoch, 1.0 / (epoch + 1), 0.1 * epoch, 0.2, 1.0) for run in runs for epoch in (2, 0, 1)]
    assert_drawn_png(plot_validation_curves(history, runs, tmp_path / "curves.png"))


def test_validation_curves_refuse_a_run_missing_from_the_runs_table(tmp_path):
    history = [EpochRecord("ghost", 0, 1.0, 0.1, 0.2, 1.0)]
    with pytest.raises(ValueError, match="ghost"):
        plot_validation_curves(history, [finetune_run("scratch", 1.0, 0)], tmp_path / "curves.png")


def test_confusion_with_an_empty_class_row(tmp_path):
    confusion = np.array([[40, 3, 1], [0, 0, 0], [5, 2, 30]])
    assert_drawn_png(plot_confusion(confusion, CLASS_NAMES, "scratch @ 0.1", tmp_path / "confusion.png"))


def test_tsne_scatter_with_a_class_legend(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 2], 30)
    embedding = rng.normal(size=(60, 2)) + labels[:, None]
    assert_drawn_png(plot_tsne(embedding, labels, CLASS_NAMES, tmp_path / "tsne.png"))


def test_confusion_leaves_out_classes_neither_true_nor_predicted(tmp_path):
    all_seen = plot_confusion(np.array([[4, 1, 0], [0, 3, 1], [0, 0, 2]]), CLASS_NAMES, "all", tmp_path / "all.png")
    one_unseen = plot_confusion(np.array([[4, 1, 0], [0, 3, 0], [0, 0, 0]]), CLASS_NAMES, "two", tmp_path / "two.png")
    assert matplotlib.image.imread(one_unseen).shape[1] < matplotlib.image.imread(all_seen).shape[1]
