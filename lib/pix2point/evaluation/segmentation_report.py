"""The evaluate stage's outputs: report.md for people, metrics.json for programs, a rich table for the terminal,
and the small metrics dict of the manifest. All of them render one `Evaluation`.

Units: metrics.json and the manifest hold scores as fractions in [0, 1] (gains are differences of those);
report.md and the terminal show percent and percentage points.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pix2point.evaluation.drift import Drift, drift_document, drift_markdown
from pix2point.evaluation.feature_probe import PROBE_FOLDS, ProbeScore
from pix2point.evaluation.markdown import json_number, markdown_table, mean_and_spread, percent, signed_points
from pix2point.evaluation.segmentation_summary import BASELINE_INIT, PRETRAINED_INIT, CellSummary, ScoredRun, init_order
from pix2point.evaluation.verdict import Verdict, verdict_document, verdict_table

REPORT_FILE = "report.md"
METRICS_FILE = "metrics.json"
MIOU_DEFINITION = ("mean IoU over the classes present in the ground truth or in the predictions of the validation "
                   "scenes (a class neither true nor predicted is left out; a class predicted but never true scores 0)")
PROBE_FEATURE_MEANING = {
    "pretrained": "the pretrain artefact's backbone, before any finetuning",
    "random_init": "the same backbone architecture with random weights (what pretraining starts from)",
    "input_rgb_xyz": "the raw point attributes the network reads: colour and position",
}


@dataclass(frozen=True)
class LossSummary:
    steps: int
    first: float
    last: float
    minimum: float


@dataclass(frozen=True)
class Evaluation:
    class_names: list[str]
    label_unit: str  # what a label fraction counts: a share of "scenes" or "points", or "points_per_scene" (a number)
    runs: list[ScoredRun]
    cells: list[CellSummary]
    verdicts: dict[float, Verdict]  # label fraction -> pretrain against scratch over seeds
    pretrain_loss: LossSummary
    probes: list[ProbeScore]
    probe_split: str
    probe_scenes: list[str]
    figures: dict[str, str]  # caption -> PNG file name inside the artefact
    drift: Drift | None = None  # a finetuning run repeated with the same seed (normal mode)
    deterministic: bool = False  # the finetune stage ran in deterministic mode

    @property
    def gains(self) -> dict[float, float]:
        """Label fraction -> mean mIoU of pretrain minus scratch."""
        return {fraction: verdict.gap for fraction, verdict in self.verdicts.items()}


def write_report(out: Path, evaluation: Evaluation) -> None:
    (out / REPORT_FILE).write_text(report_markdown(evaluation))
    (out / METRICS_FILE).write_text(json.dumps(metrics_document(evaluation), indent=2, allow_nan=False))


def print_summary(evaluation: Evaluation, console: Console | None = None) -> None:
    console = console or Console()
    header, rows = miou_table_rows(evaluation)
    table = Table(title="PPKT evaluation: final validation mIoU (%), mean ± std over seeds (n)")
    for column in header:
        table.add_column(column, justify="left" if column == header[0] else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    probe = Table(title=f"linear probe on frozen features ({PROBE_FOLDS}-fold CV)")
    probe.add_column("features")
    for column in ("accuracy %", "balanced accuracy %"):
        probe.add_column(column, justify="right")
    for score in evaluation.probes:
        probe.add_row(score.features, *_probe_cells(score))
    console.print(probe)


def manifest_metrics(evaluation: Evaluation) -> dict:
    return {
        "miou": {f"{cell.init}@{cell.label_fraction:g}": {"mean": json_number(cell.miou_mean), "std": json_number(cell.miou_std),
                                                          "seeds": len(cell.seeds)} for cell in evaluation.cells},
        "gain": {f"{fraction:g}": json_number(gain) for fraction, gain in evaluation.gains.items()},
        "verdict": {f"{fraction:g}": verdict.outcome for fraction, verdict in evaluation.verdicts.items()},
        "probe_accuracy": {score.features: json_number(score.accuracy_mean) for score in evaluation.probes},
        "probe_balanced_accuracy": {score.features: json_number(score.balanced_accuracy_mean) for score in evaluation.probes},
    }


def metrics_document(evaluation: Evaluation) -> dict:
    """Everything numeric, JSON-ready (NaN becomes null)."""
    return {
        "units": "scores are fractions in [0, 1]; gains are differences of mean mIoU",
        "miou_definition": MIOU_DEFINITION,
        "class_names": evaluation.class_names,
        "label_unit": evaluation.label_unit,
        "table": [_cell_document(cell, evaluation.class_names) for cell in evaluation.cells],
        "gains": [{"label_fraction": fraction, "miou_gain": json_number(verdict.gap), **verdict_document(verdict)}
                  for fraction, verdict in evaluation.verdicts.items()],
        "runs": [_run_document(run, evaluation.class_names) for run in evaluation.runs],
        "pretrain_loss": asdict(evaluation.pretrain_loss),
        "probe": {
            "split": evaluation.probe_split,
            "scenes": evaluation.probe_scenes,
            "folds": PROBE_FOLDS,
            "scores": {score.features: {key: json_number(value) if isinstance(value, float) else value
                                        for key, value in asdict(score).items()} for score in evaluation.probes},
        },
        "figures": evaluation.figures,
        "drift": drift_document(evaluation.drift, evaluation.deterministic),
    }


def miou_table_rows(evaluation: Evaluation) -> tuple[list[str], list[list[str]]]:
    """init x label fraction cells as text, then the gain row: shared by report.md and the terminal."""
    fractions = sorted({cell.label_fraction for cell in evaluation.cells})
    by_cell = {(cell.init, cell.label_fraction): cell for cell in evaluation.cells}
    inits = sorted({cell.init for cell in evaluation.cells}, key=init_order)
    header = ["init", *(f"labels {fraction:g}" for fraction in fractions)]
    rows = [[init, *(_cell_text(by_cell.get((init, fraction))) for fraction in fractions)] for init in inits]
    gain_row = [f"gain {PRETRAINED_INIT} − {BASELINE_INIT}",
                *(signed_points(evaluation.gains[f]) if f in evaluation.gains else "–" for f in fractions)]
    return header, [*rows, gain_row]


def report_markdown(evaluation: Evaluation) -> str:
    sections = [
        _overview_section(evaluation),
        _miou_section(evaluation),
        _per_class_section(evaluation),
        _probe_section(evaluation),
        _runs_section(evaluation),
        _pretraining_section(evaluation),
        _figures_section(evaluation),
    ]
    return "\n\n".join(sections) + "\n"


def _overview_section(evaluation: Evaluation) -> str:
    inits = sorted({cell.init for cell in evaluation.cells}, key=init_order)
    return "\n".join([
        "# PPKT evaluation",
        "",
        f"{len(evaluation.runs)} finetuning runs (inits: {', '.join(inits)}), {len(evaluation.class_names)} classes; "
        + _label_budget_sentence(evaluation.label_unit),
        f"All scores are recomputed from each run's validation confusion matrix after its last epoch. mIoU: {MIOU_DEFINITION}.",
    ])


def _label_budget_sentence(unit: str) -> str:
    if unit == "points_per_scene":
        return "labels N means finetuning used N labelled points of each training scene."
    return f"a label fraction is the share of training {unit} whose labels finetuning used."


def _miou_section(evaluation: Evaluation) -> str:
    header, rows = miou_table_rows(evaluation)
    verdicts = [([f"{fraction:g}", f"{PRETRAINED_INIT} vs {BASELINE_INIT}"], verdict)
                for fraction, verdict in evaluation.verdicts.items()]
    return "\n".join([
        "## Final validation mIoU (%): mean ± std over seeds (n seeds)",
        "",
        markdown_table(header, rows),
        "",
        f"### `{PRETRAINED_INIT}` against `{BASELINE_INIT}`: validation mIoU",
        "",
        verdict_table(["labels", "comparison"], verdicts) if verdicts else "No label fraction has both inits.",
        "",
        drift_markdown(evaluation.drift, evaluation.deterministic, "validation mIoU"),
    ])


def _per_class_section(evaluation: Evaluation) -> str:
    defined = [k for k in range(len(evaluation.class_names))
               if any(not math.isnan(cell.iou_mean[k]) for cell in evaluation.cells)]
    header = ["class", *(cell.label for cell in evaluation.cells)]
    rows = [[evaluation.class_names[k], *(percent(cell.iou_mean[k]) for cell in evaluation.cells)] for k in defined]
    never_seen = [name for k, name in enumerate(evaluation.class_names) if k not in defined]
    notes = ["– : the class was neither true nor predicted in any seed's validation scenes of that column."]
    if never_seen:
        notes.append(f"Left out, neither true nor predicted in any run: {', '.join(never_seen)}.")
    return "\n\n".join(["## Per-class IoU (%), mean over seeds", markdown_table(header, rows), *notes])


def _probe_section(evaluation: Evaluation) -> str:
    header = ["features", "meaning", "dims", "points", "classes", "accuracy %", "balanced accuracy %"]
    rows = [[score.features, PROBE_FEATURE_MEANING.get(score.features, ""), str(score.dimensions), str(score.points),
             str(score.classes), *_probe_cells(score)] for score in evaluation.probes]
    return "\n".join([
        "## How well frozen features separate classes (no finetuning)",
        "",
        f"Logistic regression on standardised per-point features, {PROBE_FOLDS}-fold stratified cross-validation "
        f"(mean ± std over folds), on labelled points sampled evenly from the `{evaluation.probe_split}` scenes "
        f"{', '.join(evaluation.probe_scenes)}. Balanced accuracy is the mean per-class recall.",
        "",
        markdown_table(header, rows),
    ])


def _runs_section(evaluation: Evaluation) -> str:
    header = ["run", "init", "labels", "seed", "epochs", "mIoU %", "mean class acc. %", "overall acc. %",
              "logged final / best val mIoU %"]
    rows = [[run.result.run, run.result.init, f"{run.result.label_fraction:g}", str(run.result.seed),
             str(run.result.epochs), percent(run.scores.miou), percent(run.scores.mean_class_accuracy),
             percent(run.scores.overall_accuracy),
             f"{percent(run.result.final_val_miou)} / {percent(run.result.best_val_miou)}"] for run in evaluation.runs]
    return "\n".join(["## Every run", "", markdown_table(header, rows), "",
                      "The logged values are the finetune stage's own, as it stored them; they may count classes by another rule "
                      "than the recomputed mIoU above."])


def _pretraining_section(evaluation: Evaluation) -> str:
    loss = evaluation.pretrain_loss
    return "\n".join(["## Pretraining", "",
                      f"{loss.steps} logged steps; loss {loss.first:.4f} at the first, {loss.last:.4f} at the last, "
                      f"{loss.minimum:.4f} at the lowest."])


def _figures_section(evaluation: Evaluation) -> str:
    return "\n\n".join(["## Figures", *(f"![{caption}]({name})" for caption, name in evaluation.figures.items())])


def _cell_document(cell: CellSummary, class_names: list[str]) -> dict:
    return {
        "init": cell.init,
        "label_fraction": cell.label_fraction,
        "seeds": list(cell.seeds),
        "miou_mean": json_number(cell.miou_mean),
        "miou_std": json_number(cell.miou_std),
        "mean_class_accuracy_mean": json_number(cell.mean_class_accuracy_mean),
        "iou_per_class_mean": dict(zip(class_names, map(json_number, cell.iou_mean))),
        "confusion_summed_over_seeds": cell.confusion.tolist(),
    }


def _run_document(run: ScoredRun, class_names: list[str]) -> dict:
    return {
        "run": run.result.run,
        "init": run.result.init,
        "label_fraction": run.result.label_fraction,
        "seed": run.result.seed,
        "epochs": run.result.epochs,
        "miou": json_number(run.scores.miou),
        "mean_class_accuracy": json_number(run.scores.mean_class_accuracy),
        "overall_accuracy": json_number(run.scores.overall_accuracy),
        "iou_per_class": dict(zip(class_names, map(json_number, run.scores.iou))),
        "logged_final_val_miou": json_number(run.result.final_val_miou),
        "logged_best_val_miou": json_number(run.result.best_val_miou),
        "confusion": run.result.confusion.tolist(),
    }


def _cell_text(cell: CellSummary | None) -> str:
    return "–" if cell is None else mean_and_spread(cell.miou_mean, cell.miou_std, len(cell.seeds))


def _probe_cells(score: ProbeScore) -> list[str]:
    return [f"{percent(score.accuracy_mean)} ± {100 * score.accuracy_std:.1f}",
            f"{percent(score.balanced_accuracy_mean)} ± {100 * score.balanced_accuracy_std:.1f}"]
