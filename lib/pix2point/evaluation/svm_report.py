"""The evaluate_objects summary: linear-SVM accuracy of each frozen object encoder (pretrained ones and a
random-init twin), and whether I2P-MAE's ordering holds: full I2P-MAE (2D-guided masking + 2D target)
above plain masked autoencoding (random masking, no 2D target) above random weights.

Each pair of kinds gets a verdict (evaluation/verdict.py) over the encoders of each kind: one pretraining
run per kind (the default pipeline) is one score a side, so the verdict is `unresolved` however large the
gap; pretrain inputs of the same kind trained with other seeds each add a score to their side."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pix2point.evaluation.linear_svm import SvmScore
from pix2point.evaluation.markdown import json_number, markdown_table, percent
from pix2point.evaluation.verdict import Verdict, compare, verdict_document, verdict_table

REPORT_FILE = "report.md"
METRICS_FILE = "metrics.json"


FULL, PLAIN, RANDOM, ABLATION = "i2p_mae", "plain_mae", "random_init", "ablation"
KIND_LABELS = {
    FULL: "I2P-MAE (2D-guided masking + 2D target)",
    PLAIN: "plain masked autoencoding (random masking, no 2D target)",
    RANDOM: "random init",
    ABLATION: "I2P-MAE ablation (one of guided masking and 2D target)",
}


@dataclass(frozen=True)
class EncoderScore:
    name: str  # the pretrain input's stage name; RANDOM (then RANDOM_seed<k>) for the random-init twins
    pretraining: dict | None  # the pretrain artefact's pretraining.json; None for random weights
    test: SvmScore  # fitted on the train split, scored on the test split
    cross_validation: float  # mean accuracy over folds of the train split alone, at the chosen C
    cross_validation_by_c: dict[float, float]  # the same for every candidate C

    @property
    def kind(self) -> str:
        if self.pretraining is None:
            return RANDOM
        guided, target_2d = self.pretraining["masking"] == "guided", self.pretraining["target_2d"]
        return FULL if guided and target_2d else PLAIN if not (guided or target_2d) else ABLATION


def paper_ordering(scores: list[EncoderScore]) -> bool | None:
    """Whether full I2P-MAE > plain masked autoencoding > random init in mean test accuracy over the encoders
    of each kind (the statistic whose gaps the verdicts test); None unless all three kinds were evaluated."""
    by_kind = accuracies_by_kind(scores)
    if not {FULL, PLAIN, RANDOM} <= by_kind.keys():
        return None
    mean = {kind: sum(values) / len(values) for kind, values in by_kind.items()}
    return mean[FULL] > mean[PLAIN] > mean[RANDOM]


def accuracies_by_kind(scores: list[EncoderScore]) -> dict[str, list[float]]:
    """{kind: the test accuracy of each of its encoders}."""
    by_kind: dict[str, list[float]] = {}
    for score in scores:
        by_kind.setdefault(score.kind, []).append(score.test.accuracy)
    return by_kind


def kind_verdicts(scores: list[EncoderScore]) -> list[tuple[str, str, Verdict]]:
    """(kind, the kind it is compared with, the verdict on test accuracy over the encoders of each kind) for
    the paper's pairs: I2P-MAE against plain MAE and against random init, plain MAE against random init."""
    by_kind = accuracies_by_kind(scores)
    pairs = ((FULL, PLAIN), (FULL, RANDOM), (PLAIN, RANDOM))
    return [(kind, other, compare(by_kind[kind], by_kind[other])) for kind, other in pairs
            if kind in by_kind and other in by_kind]


def report_markdown(scores: list[EncoderScore], folds: int, class_names: list[str]) -> str:
    rows = [[score.name, KIND_LABELS[score.kind], _saliency(score), f"{score.test.c:g}", percent(score.test.accuracy),
             percent(score.test.mean_class_accuracy), percent(score.cross_validation), _steps(score)] for score in scores]
    first = scores[0]
    candidates = ", ".join(f"{c:g}" for c in first.cross_validation_by_c)
    holds = paper_ordering(scores)
    ordering = {None: "Not all three of full I2P-MAE, plain masked autoencoding and random init were evaluated.",
                True: "The paper's ordering holds in the test accuracies (mean over the encoders of each kind): "
                      "full I2P-MAE > plain masked autoencoding > random init (see the verdicts for whether each "
                      "gap is resolved).",
                False: "The paper's ordering does NOT hold in the test accuracies (mean over the encoders of each "
                       "kind): see the table for the actual ranking and the verdicts for whether each gap is "
                       "resolved."}[holds]
    verdicts = [([KIND_LABELS[kind], KIND_LABELS[other]], verdict) for kind, other, verdict in kind_verdicts(scores)]
    return "\n\n".join([
        "# Linear SVM on frozen object features",
        f"Each encoder embeds every object (its coarsest tokens, max-pooled); a linear SVM is fitted on the "
        f"{first.test.train_objects} training objects and scored on the {first.test.test_objects} test objects "
        f"({len(class_names)} classes). The cross-validation column uses the training split only ({folds} folds); "
        f"it picked each encoder's C among {candidates}. Settings may be chosen by it, never by the test column.",
        markdown_table(["encoder", "pretraining", "saliency distribution", "C", "test accuracy %", "test mean class accuracy %",
                        f"train {folds}-fold CV accuracy %", "pretraining steps"], rows),
        ordering,
        "## Verdicts: test accuracy, over the pretraining runs of each kind",
        verdict_table(["encoders", "against"], verdicts, samples="pretraining runs") if verdicts
        else "Fewer than two kinds of encoder were evaluated: nothing to compare.",
    ]) + "\n"


def metrics_document(scores: list[EncoderScore], folds: int) -> dict:
    return {
        "encoders": {score.name: {
            "kind": score.kind, "description": KIND_LABELS[score.kind], "pretraining": score.pretraining, "svm_c": score.test.c,
            "test_accuracy": json_number(score.test.accuracy),
            "test_mean_class_accuracy": json_number(score.test.mean_class_accuracy),
            "train_cv_accuracy": json_number(score.cross_validation), "cv_folds": folds,
            "train_cv_accuracy_by_c": {f"{c:g}": json_number(value) for c, value in score.cross_validation_by_c.items()},
        } for score in scores},
        "paper_ordering_holds": paper_ordering(scores),
        "comparisons": [{"kind": kind, "against": other, **verdict_document(verdict)}
                        for kind, other, verdict in kind_verdicts(scores)],
    }


def write_report(out: Path, scores: list[EncoderScore], folds: int, class_names: list[str]) -> None:
    (out / REPORT_FILE).write_text(report_markdown(scores, folds, class_names))
    (out / METRICS_FILE).write_text(json.dumps(metrics_document(scores, folds), indent=2))


def _saliency(score: EncoderScore) -> str:
    """Which masking distribution a guided pretraining ran with (older artefacts predate the choice)."""
    if score.pretraining is None or score.pretraining["masking"] != "guided":
        return "–"
    return score.pretraining.get("saliency_distribution") or "min_max (before the choice existed)"


def _steps(score: EncoderScore) -> str:
    return "–" if score.pretraining is None else str(score.pretraining["steps"])
