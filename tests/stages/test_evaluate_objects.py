"""The evaluate_objects stage: a toy case whose classes any encoder separates, its input errors, and the smoke
profile end to end (objects -> views2d -> both I2P-MAE pretrainings -> linear SVM) checked against a
direct embedding + SVM of the same encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from stages import evaluate_objects

from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import run_pipeline
from pix2point.evaluation.linear_svm import linear_svm_score
from pix2point.io.arrow import write_table
from pix2point.io.objects_table import OBJECTS_FILE, Objects, objects_table, read_objects
from pix2point.models.point_m2ae import HierarchicalEncoder, PointM2AESpec, embed_objects, load_encoder, save_encoder

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline.yaml"
SPEC = PointM2AESpec((64, 32, 8), (16, 8, 4), (24, 48, 96), (1, 1, 1), 3, (16, 32, 64))
PARAMS = evaluate_objects.Params(cv_folds=2, svm_c=1.0)


def write_toy_objects(directory: Path, train: int = 20, test: int = 10, points: int = 256) -> Path:
    """Two classes any encoder tells apart: the surface of a unit sphere, and a thin rod along x."""
    rng = np.random.default_rng(0)
    clouds, labels, splits = [], [], []
    for split, count in (("train", train), ("test", test)):
        for label in (0, 1):
            for _ in range(count):
                if label == 0:
                    cloud = rng.normal(size=(points, 3))
                    cloud /= np.linalg.norm(cloud, axis=1, keepdims=True)
                else:
                    cloud = np.stack([rng.uniform(-1, 1, points), *(0.01 * rng.normal(size=(2, points)))], axis=1)
                clouds.append(cloud)
                labels.append(label)
                splits.append(split)
    objects = Objects(np.array(clouds, np.float32), np.zeros((len(clouds), points, 3), np.float32),
                      np.array(labels, np.int16), [f"shape_{i:03d}" for i in range(len(clouds))])
    directory.mkdir()
    write_table(objects_table(objects, splits, ["sphere", "rod"], up_axis=1, normalized=False), directory / OBJECTS_FILE)
    return directory


def write_pretrained(directory: Path, seed: int, masking: str, target_2d: bool, spec: PointM2AESpec = SPEC) -> Path:
    """A pretrain artefact as stages/pretrain.py writes it, with seeded weights standing in for training."""
    directory.mkdir()
    torch.manual_seed(seed)
    save_encoder(directory, HierarchicalEncoder(spec))
    description = {"method": "i2p_mae", "masking": masking, "target_2d": target_2d, "mask_ratio": 0.8, "steps": 3,
                   "saliency_distribution": "reference" if masking == "guided" else None}
    (directory / "pretraining.json").write_text(json.dumps(description))
    # The loss log's contract (training/pretraining/i2p_mae.py): the sum and its two terms, the 2D one zero without a 2D target.
    feature_loss = [0.5, 0.4, 0.3] if target_2d else [0.0, 0.0, 0.0]
    loss = [3.0, 2.0, 1.5]
    write_table(pa.table({"step": [1, 2, 3], "loss": loss, "chamfer": [total - f for total, f in zip(loss, feature_loss)],
                          "feature_loss": feature_loss}), directory / "loss.parquet")
    return directory


@pytest.fixture
def toy_inputs(tmp_path):
    return {"objects": write_toy_objects(tmp_path / "objects"),
            "pretrain_mae": write_pretrained(tmp_path / "mae", 1, "random", False),
            "pretrain_i2p_mae": write_pretrained(tmp_path / "i2p", 2, "guided", True)}


def test_separable_toy_objects_are_classified_perfectly_by_every_encoder(toy_inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    metrics = evaluate_objects.run(PARAMS, toy_inputs, out)
    assert metrics == {"svm_accuracy_pretrain_i2p_mae": 1.0, "svm_accuracy_pretrain_mae": 1.0,
                       "svm_accuracy_random_init": 1.0}
    document = json.loads((out / "metrics.json").read_text())
    assert document["encoders"]["pretrain_i2p_mae"]["kind"] == "i2p_mae"
    assert document["encoders"]["pretrain_mae"]["kind"] == "plain_mae"
    assert document["encoders"]["random_init"]["train_cv_accuracy"] >= 0.9  # folds train on 10 objects per class
    assert document["paper_ordering_holds"] is False  # a three-way tie is not the paper's ordering
    report = (out / "report.md").read_text()
    assert "does NOT hold" in report and "| pretrain_mae | plain masked autoencoding" in report
    # The report says which masking distribution each guided encoder ran with.
    assert "| pretrain_i2p_mae | I2P-MAE (2D-guided masking + 2D target) | reference |" in report
    assert "| pretrain_mae | plain masked autoencoding (random masking, no 2D target) | – |" in report
    assert (out / "loss_pretrain_mae.png").stat().st_size > 0


def test_candidate_cs_are_chosen_by_train_cross_validation_alone(toy_inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    evaluate_objects.run(evaluate_objects.Params(cv_folds=2, svm_c=(10.0, 1e-7, 1.0)), toy_inputs, out)
    for encoder in json.loads((out / "metrics.json").read_text())["encoders"].values():
        by_c = {float(c): accuracy for c, accuracy in encoder["train_cv_accuracy_by_c"].items()}
        best = max(by_c.values())
        assert by_c[1e-7] < best == 1.0  # a vanishing C barely fits
        assert encoder["svm_c"] == min(c for c, accuracy in by_c.items() if accuracy == best)
        assert encoder["train_cv_accuracy"] == best


def test_input_errors_name_what_is_wrong(toy_inputs, tmp_path):
    with pytest.raises(ValueError, match="at least one I2P-MAE pretrain input"):
        evaluate_objects.run(PARAMS, {"objects": toy_inputs["objects"]}, tmp_path)
    other_spec = PointM2AESpec((64, 32, 8), (16, 8, 4), (24, 48, 96), (1, 1, 2), 3, (16, 32, 64))
    mismatched = {**toy_inputs, "pretrain_mae": write_pretrained(tmp_path / "other", 1, "random", False, other_spec)}
    with pytest.raises(ValueError, match="differ in spec"):
        evaluate_objects.run(PARAMS, mismatched, tmp_path)
    (toy_inputs["pretrain_mae"] / "pretraining.json").unlink()
    with pytest.raises(FileNotFoundError, match="pretraining.json"):
        evaluate_objects.run(PARAMS, toy_inputs, tmp_path)
    with pytest.raises(ValueError, match="'cv_folds' = 7"):
        evaluate_objects.cross_validated(np.zeros((12, 2)), np.repeat([0, 1], 6), 1.0, folds=7, seed=0)


@pytest.mark.slow
def test_smoke_profile_end_to_end_matches_a_direct_svm_on_the_same_encoder(ray_runtime, tmp_path):
    pipeline = load_pipeline(PIPELINE, "smoke")
    outcomes = {o.stage: o for o in run_pipeline(pipeline, ArtefactStore(tmp_path), targets=["evaluate_objects"])}
    assert {"objects", "views2d", "pretrain_mae", "pretrain_i2p_mae", "evaluate_objects"} <= outcomes.keys()
    evaluation = outcomes["evaluate_objects"].path
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert set(metrics["encoders"]) == {"pretrain_mae", "pretrain_i2p_mae", "random_init"}
    assert isinstance(metrics["paper_ordering_holds"], bool)

    params = pipeline.stages["evaluate_objects"].params
    objects_dir = outcomes["objects"].path
    train, test = read_objects(objects_dir, "train"), read_objects(objects_dir, "test")
    encoder = load_encoder(outcomes["pretrain_i2p_mae"].path)
    chosen_c = metrics["encoders"]["pretrain_i2p_mae"]["svm_c"]
    assert chosen_c in np.atleast_1d(params.svm_c)
    direct = linear_svm_score(embed_objects(encoder, train.points), train.labels, embed_objects(encoder, test.points),
                              test.labels, chosen_c)
    assert metrics["encoders"]["pretrain_i2p_mae"]["test_accuracy"] == pytest.approx(direct.accuracy)


def test_pretrainings_of_other_seeds_and_random_inits_each_add_a_score_to_their_side(toy_inputs, tmp_path):
    """pipelines/i2p_mae_seeds.yaml's evaluation: three encoders a kind, so each verdict rests on three scores."""
    inputs = dict(toy_inputs)
    for seed in (3, 4):
        inputs[f"pretrain_mae_seed{seed}"] = write_pretrained(tmp_path / f"mae{seed}", seed, "random", False)
        inputs[f"pretrain_i2p_mae_seed{seed}"] = write_pretrained(tmp_path / f"i2p{seed}", 10 + seed, "guided", True)
    out = tmp_path / "out"
    out.mkdir()
    metrics = evaluate_objects.run(evaluate_objects.Params(cv_folds=2, svm_c=1.0, seed=5, random_inits=3), inputs, out)
    assert {"svm_accuracy_random_init", "svm_accuracy_random_init_seed6", "svm_accuracy_random_init_seed7"} < metrics.keys()
    document = json.loads((out / "metrics.json").read_text())
    weights = [document["encoders"][name]["kind"] for name in ("random_init", "random_init_seed6", "random_init_seed7")]
    assert weights == ["random_init"] * 3
    assert {(c["kind"], c["against"]): (c["candidate_seeds"], c["baseline_seeds"]) for c in document["comparisons"]} == {
        ("i2p_mae", "plain_mae"): (3, 3), ("i2p_mae", "random_init"): (3, 3), ("plain_mae", "random_init"): (3, 3)}
