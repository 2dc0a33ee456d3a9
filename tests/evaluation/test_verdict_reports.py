"""The verdict in the object-level reports (issue 22 item 1), on constructed results: finetune_objects
(pretrained inits against scratch, I2P-MAE against plain MAE), fewshot (each network against its scratch
baseline per N-way K-shot, over folds) and evaluate_objects (I2P-MAE vs plain MAE vs random init)."""

from __future__ import annotations

import json

import numpy as np

from pix2point.evaluation import fewshot_report, finetune_objects_report, svm_report
from pix2point.evaluation.linear_svm import SvmScore
from pix2point.io.fewshot_table import EpisodeRecord
from pix2point.io.finetune_objects_table import FinetuneObjectsRun


def finetuned(init: str, seed: int, accuracy: float) -> FinetuneObjectsRun:
    return FinetuneObjectsRun(f"{init}-seed{seed}", init, seed, 0, 16, 2, accuracy, accuracy, 2, None, 0, 1.0,
                              np.eye(2, dtype=np.int64))


def test_finetune_objects_gives_pretrained_inits_their_verdict_against_scratch_and_i2p_mae_against_mae(tmp_path):
    runs = [finetuned("scratch", seed, 0.50 + 0.01 * seed) for seed in range(3)]
    runs += [finetuned("pretrain_mae", seed, 0.52 - 0.02 * seed) for seed in range(3)]  # overlaps scratch
    runs += [finetuned("pretrain_i2p_mae", seed, 0.80 + 0.01 * seed) for seed in range(3)]
    metrics = finetune_objects_report.write_report(tmp_path, runs, [], epochs=2, votes=0, deterministic=True)
    assert metrics["verdict"] == {"pretrain_mae vs scratch": "unresolved", "pretrain_i2p_mae vs scratch": "ahead",
                                  "pretrain_i2p_mae vs pretrain_mae": "ahead"}
    report = (tmp_path / "report.md").read_text()
    assert "| I2P-MAE (2D-guided) | scratch (random init) | +30.0 | 1.0 / 1.0 | 3 / 3 |" in report
    assert "| plain masked autoencoding | scratch (random init) | -1.0 |" in report and "**unresolved** |" in report
    comparisons = json.loads((tmp_path / "metrics.json").read_text())["comparisons"]
    assert [(c["init"], c["against"], c["verdict"]) for c in comparisons] == [
        ("pretrain_mae", "scratch", "unresolved"), ("pretrain_i2p_mae", "scratch", "ahead"),
        ("pretrain_i2p_mae", "pretrain_mae", "ahead")]


def episode(network: str, ways: int, fold: int, accuracy: float) -> EpisodeRecord:
    return EpisodeRecord(network, ways, 1, fold, accuracy, ways, 2 * ways, 2, 1.0, 1.0, [f"c{k}" for k in range(ways)])


def test_fewshot_resolves_each_setting_over_its_folds_and_one_fold_is_unresolved(tmp_path):
    records = [episode(network, 5, fold, base + 0.01 * fold) for fold in range(4)
               for network, base in (("pretrained", 0.9), ("scratch", 0.5))]
    records += [episode(network, 10, 0, accuracy) for network, accuracy in (("pretrained", 0.9), ("scratch", 0.1))]
    metrics = fewshot_report.write_report(tmp_path, records, {"pretrained": "scratch"}, queries=2, training="2 steps")
    assert metrics["verdict_pretrained_5way_1shot"] == "ahead" and metrics["verdict_pretrained_10way_1shot"] == "unresolved"
    report = (tmp_path / "report.md").read_text()
    assert "| 5-way 1-shot | pretrained | scratch | +40.0 | 1.3 / 1.3 | 4 / 4 | < 0.001 | **ahead** |" in report
    assert "| 10-way 1-shot | pretrained | scratch | +80.0 | – / – | 1 / 1 | – | **unresolved** |" in report
    assert "Welch's t-test over folds" in report


def encoder(name: str, kind: str | None, accuracy: float) -> svm_report.EncoderScore:
    pretraining = None if kind is None else {"masking": "guided" if kind == "full" else "random",
                                             "target_2d": kind == "full", "steps": 4}
    return svm_report.EncoderScore(name, pretraining, SvmScore(accuracy, 1.0, 16, 8, {}, accuracy), accuracy, {1.0: accuracy})


def test_svm_verdicts_pool_the_encoders_of_each_kind_and_one_pretraining_each_is_unresolved():
    single = [encoder("pretrain_i2p_mae", "full", 0.95), encoder("pretrain_mae", "plain", 0.90),
              encoder("random_init", None, 0.50)]
    assert [verdict.outcome for *_, verdict in svm_report.kind_verdicts(single)] == ["unresolved"] * 3
    text = svm_report.report_markdown(single, folds=2, class_names=["a", "b"])
    assert "The paper's ordering holds in the test accuracies" in text
    assert "| I2P-MAE (2D-guided masking + 2D target) | random init | +45.0 | – / – | 1 / 1 | – | **unresolved** |" in text
    seeded = [*single, encoder("pretrain_i2p_mae_1", "full", 0.96), encoder("pretrain_mae_1", "plain", 0.91),
              encoder("pretrain_i2p_mae_2", "full", 0.94), encoder("pretrain_mae_2", "plain", 0.89)]
    verdicts = {(kind, other): verdict for kind, other, verdict in svm_report.kind_verdicts(seeded)}
    assert verdicts[("i2p_mae", "plain_mae")].outcome == "ahead" and verdicts[("i2p_mae", "plain_mae")].candidate_seeds == 3
    assert verdicts[("plain_mae", "random_init")].baseline_seeds == 1
    assert svm_report.metrics_document(seeded, 2)["comparisons"][0]["verdict"] == "ahead"


def test_the_papers_ordering_is_judged_on_each_kinds_mean_not_its_best_run():
    """One lucky I2P-MAE seed must not make the ordering hold while its verdict against plain MAE is behind."""
    scores = [*(encoder(f"i2p_{i}", "full", a) for i, a in enumerate((0.95, 0.60, 0.61))),
              *(encoder(f"mae_{i}", "plain", a) for i, a in enumerate((0.80, 0.81, 0.79))),
              *(encoder(f"random_{i}", None, a) for i, a in enumerate((0.70, 0.71, 0.69)))]
    assert svm_report.paper_ordering(scores) is False
    assert svm_report.paper_ordering([scores[0], scores[3], scores[6]]) is True
