"""Stage `evaluate_objects`: I2P-MAE's linear-SVM evaluation of frozen object encoders.

Inputs: `objects`, and any number of I2P-MAE pretrain artefacts (every other input; each holds encoder.pt,
encoder.json and pretraining.json, see stages/pretrain.py), all of one encoder spec. Each pretrained
encoder and `random_inits` random-init encoders of the same spec (seeded by `seed`, `seed` + 1, ...) embed every
object (the coarsest tokens, max-pooled, as the paper does); a linear SVM fitted on the train split is scored
on the test split (evaluation/linear_svm.py), and on `cv_folds` folds of the train split alone, which is also
what picks C when `svm_c` lists candidates.

Writes report.md (table, and whether the paper's ordering holds), metrics.json (evaluation/svm_report.py)
and loss_<input>.png per pretrained encoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq
from pydantic import ConfigDict, Field, PositiveFloat

from pix2point.evaluation.report_note import ReportNoteParams, add_note
from pix2point.evaluation.linear_svm import I2P_MAE_MODELNET40_C, linear_svm_score
from pix2point.evaluation.svm_report import RANDOM, REPORT_FILE, EncoderScore, write_report
from pix2point.io.objects_table import Objects, class_names, read_objects
from pix2point.models.point_m2ae_spec import common_spec

if TYPE_CHECKING:  # torch is imported by run: loading the pipeline stays light
    from pix2point.models.point_m2ae import HierarchicalEncoder

OBJECTS_INPUT = "objects"


class Params(ReportNoteParams):
    model_config = ConfigDict(extra="forbid")

    # One C (default: the paper's for ModelNet40), or candidates: each encoder then uses the C of its best
    # train-split cross-validated accuracy (ties: the smaller C), so no choice ever looks at the test split.
    svm_c: PositiveFloat | tuple[PositiveFloat, ...] = I2P_MAE_MODELNET40_C
    seed: int = 0  # weights of the random-init encoder, and the cross-validation folds
    # Random-init encoders (seeds seed, seed + 1, ...): with pretrain inputs of other seeds, the random side of
    # the verdicts gets a spread too (pipelines/i2p_mae_seeds.yaml).
    random_inits: int = Field(1, ge=1)
    cv_folds: int = Field(5, ge=2)  # folds of the train split for the cross-validated accuracy
    batch_size: int = Field(32, ge=1)  # objects per encoder forward pass


def run(params: Params, inputs: dict[str, Path], out: Path) -> dict:
    import torch

    from pix2point.evaluation.plots import plot_loss_terms
    from pix2point.models.point_m2ae import HierarchicalEncoder, load_encoder
    from pix2point.training.pretraining.i2p_mae import LOSS_FILE

    pretrained = {name: path for name, path in inputs.items() if name != OBJECTS_INPUT}
    if OBJECTS_INPUT not in inputs or not pretrained:
        raise ValueError(f"evaluate_objects needs the {OBJECTS_INPUT!r} input and at least one I2P-MAE pretrain "
                         f"input; got {sorted(inputs)}")
    train, test = (read_objects(inputs[OBJECTS_INPUT], split) for split in ("train", "test"))
    encoders = {name: (load_encoder(path), read_pretraining(path)) for name, path in sorted(pretrained.items())}
    spec = common_spec(pretrained)
    for index in range(params.random_inits):
        torch.manual_seed(params.seed + index)
        encoders[RANDOM if index == 0 else f"{RANDOM}_seed{params.seed + index}"] = (HierarchicalEncoder(spec), None)
    scores = [score_encoder(name, encoder, pretraining, train, test, params)
              for name, (encoder, pretraining) in encoders.items()]
    write_report(out, scores, params.cv_folds, class_names(inputs[OBJECTS_INPUT]))
    add_note(out / REPORT_FILE, params.report_note)
    for name, path in pretrained.items():
        plot_loss_terms(*loss_terms(path / LOSS_FILE), out / f"loss_{name}.png", title=f"{name}: pretraining loss")
    return {f"svm_accuracy_{score.name}": round(score.test.accuracy, 4) for score in scores}


def loss_terms(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(step, named terms) of an I2P-MAE loss log: the Chamfer term, the 2D feature MSE when the run had a 2D
    target (all zero otherwise), and their sum, the loss that was minimised."""
    table = pq.read_table(path, columns=["step", "loss", "chamfer", "feature_loss"])
    step, chamfer, feature, total = (table[name].to_numpy() for name in ("step", "chamfer", "feature_loss", "loss"))
    if not np.any(feature):
        return step, {"Chamfer L2 (masked points)": chamfer}
    return step, {"Chamfer L2 (masked points)": chamfer, "2D feature MSE (visible tokens)": feature,
                  "sum (the loss trained)": total}


def read_pretraining(directory: Path) -> dict:
    from pix2point.training.pretraining.i2p_mae import PRETRAINING_FILE

    path = directory / PRETRAINING_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; is {directory} an I2P-MAE pretrain artefact?")
    return json.loads(path.read_text())


def score_encoder(name: str, encoder: HierarchicalEncoder, pretraining: dict | None, train: Objects, test: Objects,
                  params: Params) -> EncoderScore:
    from pix2point.models.point_m2ae import embed_objects

    train_features = embed_objects(encoder, train.points, params.batch_size)
    test_features = embed_objects(encoder, test.points, params.batch_size)
    candidates = params.svm_c if isinstance(params.svm_c, tuple) else (params.svm_c,)
    by_c = {c: cross_validated(train_features, train.labels, c, params.cv_folds, params.seed) for c in candidates}
    chosen = max(sorted(candidates), key=lambda c: by_c[c])  # max keeps the first, i.e. smallest, of a tie
    score = linear_svm_score(train_features, train.labels, test_features, test.labels, chosen)
    return EncoderScore(name, pretraining, score, by_c[chosen], by_c)


def cross_validated(features: np.ndarray, labels: np.ndarray, c: float, folds: int, seed: int) -> float:
    """Mean accuracy of the SVM over stratified folds of the train split (no test objects used)."""
    from sklearn.model_selection import StratifiedKFold

    smallest = np.unique(labels, return_counts=True)[1].min()
    if smallest < folds:
        raise ValueError(f"param 'cv_folds' = {folds} exceeds the {smallest} training objects of the "
                         "smallest class; lower it")
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(features, labels)
    return float(np.mean([linear_svm_score(features[fit], labels[fit], features[held], labels[held], c).accuracy
                          for fit, held in splits]))
