"""Stage `evaluate`: the PPKT report. How much pretraining helps finetuning, and what the pretrained
features look like before any finetuning.

Inputs: `finetune` (runs with their validation confusion matrices, per-epoch history), `pretrain` (the
backbone and its loss log) and `scenes` (points of the probed split). Outputs report.md, metrics.json and
the figures (pix2point.evaluation.segmentation_report); the per-scene embedding of probe points runs as Ray tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq
from pydantic import ConfigDict, Field

from pix2point.evaluation.report_note import ReportNoteParams, add_note
from pix2point.evaluation.segmentation_summary import CellSummary, finetune_drift, pretraining_verdicts, score_runs, summarise_cells
from pix2point.io.finetune_table import read_history, read_runs, runs_deterministic, runs_metadata
from pix2point.io.scenes_table import class_names, read_points, read_splits
from pix2point.parallel import map_tasks
from stages.scenes import require_splits

if TYPE_CHECKING:  # scikit-learn, matplotlib and torch are imported where used: loading the pipeline stays light
    from pix2point.evaluation.feature_probe import ProbeScore
    from pix2point.evaluation.segmentation_report import LossSummary


class Params(ReportNoteParams):
    model_config = ConfigDict(extra="forbid")

    tsne_points: int = Field(2000, ge=10, description="labelled points sampled for the t-SNE map and the linear probe")
    tsne_scenes: str = Field("val", description="the split whose scenes the points are drawn from")
    tsne_max_scenes: int = Field(8, ge=1, description="at most this many scenes of the split are embedded (drawn with seed)")
    tsne_perplexity: float = Field(30.0, gt=0)  # scikit-learn t-SNE perplexity (its default 30)
    seed: int = 0  # draws the scenes and points, the t-SNE init and the linear probe's split


@dataclass(frozen=True)
class SceneSampleJob:
    scene: str
    points: int  # how many labelled points to draw
    seed: int


@dataclass(frozen=True)
class PointSample:
    """Sampled labelled points and their three feature sets, row-aligned."""

    labels: np.ndarray  # [N] int
    input_rgb_xyz: np.ndarray  # [N, 6]: colour in [0, 1], position in metres
    pretrained: np.ndarray  # [N, C]
    random_init: np.ndarray  # [N, C]

    @classmethod
    def concatenate(cls, samples: list[PointSample]) -> PointSample:
        return cls(*(np.concatenate([getattr(sample, f.name) for sample in samples]) for f in fields(cls)))


def preflight(params: Params, inputs: dict[str, Any]) -> None:
    """Before the run starts (the engine's preflight): this stage embeds and probes the scenes of the split
    `tsne_scenes`, so a scenes stage that would leave it empty is a ValueError naming the params that fix it
    (stages/scenes.py)."""
    require_splits(inputs["scenes"], (params.tsne_scenes,))


def run(params: Params, inputs: dict[str, Path], out: Path) -> dict:
    from pix2point.evaluation.plots import plot_pretrain_loss, plot_validation_curves
    from pix2point.evaluation.segmentation_report import REPORT_FILE, Evaluation, manifest_metrics, print_summary, write_report

    every_run = read_runs(inputs["finetune"])
    runs = [run for run in every_run if run.repeat == 0]  # same-seed repeats only measure drift
    history = [record for record in read_history(inputs["finetune"]) if record.run in {run.run for run in runs}]
    run_class_names, label_unit = runs_metadata(inputs["finetune"])
    scored = score_runs(runs)
    cells = summarise_cells(scored)
    step, loss = read_pretrain_loss(inputs["pretrain"])
    jobs = sample_jobs(params, inputs["scenes"])
    sample = PointSample.concatenate(map_tasks(sample_scene, jobs, desc="evaluate: embed points",
                                               scenes_dir=inputs["scenes"], pretrain_dir=inputs["pretrain"]))
    figures = {
        "Pretraining loss": plot_pretrain_loss(step, loss, out / "pretrain_loss.png").name,
        "Validation mIoU per epoch": plot_validation_curves(history, runs, out / "val_miou.png").name,
        **confusion_figures(cells, run_class_names, out),
        "t-SNE of pretrained point features": tsne_figure(sample, params, class_names(inputs["scenes"], jobs[0].scene), out),
    }
    evaluation = Evaluation(
        class_names=run_class_names, label_unit=label_unit, runs=scored, cells=cells,
        verdicts=pretraining_verdicts(cells), pretrain_loss=summarise_loss(step, loss),
        probes=probe_scores(sample, params.seed), probe_split=params.tsne_scenes,
        probe_scenes=[job.scene for job in jobs], figures=figures, drift=finetune_drift(every_run),
        deterministic=runs_deterministic(inputs["finetune"]),
    )
    write_report(out, evaluation)
    add_note(out / REPORT_FILE, params.report_note)
    print_summary(evaluation)
    return manifest_metrics(evaluation)


def read_pretrain_loss(pretrain_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(step, loss) of the pretrain artefact's loss log, in step order; its other columns are not needed."""
    from pix2point.training.pretraining.ppkt import LOSS_FILE  # here, not at the top: torch stays out of loading the pipeline

    path = pretrain_dir / LOSS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the pretrain artefact has no loss log: {path}")
    table = pq.read_table(path)
    missing = {"step", "loss"} - set(table.column_names)
    if missing or table.num_rows == 0:
        raise ValueError(f"{path}: needs rows with columns step and loss; has {table.num_rows} rows, "
                         f"columns {table.column_names}")
    step, loss = table["step"].to_numpy(), table["loss"].to_numpy()
    order = np.argsort(step, kind="stable")
    return step[order], loss[order]


def summarise_loss(step: np.ndarray, loss: np.ndarray) -> LossSummary:
    from pix2point.evaluation.segmentation_report import LossSummary

    return LossSummary(steps=len(step), first=float(loss[0]), last=float(loss[-1]), minimum=float(loss.min()))


def confusion_figures(cells: list[CellSummary], names: list[str], out: Path) -> dict[str, str]:
    """One confusion matrix per (init, label fraction), summed over its seeds."""
    from pix2point.evaluation.plots import plot_confusion

    return {
        f"Confusion, {cell.label} (summed over seeds {list(cell.seeds)})": plot_confusion(
            cell.confusion, names, cell.label, out / f"confusion_{cell.init}_labels{cell.label_fraction:g}.png").name
        for cell in cells
    }


def tsne_figure(sample: PointSample, params: Params, point_class_names: list[str], out: Path) -> str:
    from pix2point.evaluation.feature_probe import tsne_embedding
    from pix2point.evaluation.plots import plot_tsne

    embedding = tsne_embedding(sample.pretrained, params.tsne_perplexity, params.seed)
    return plot_tsne(embedding, sample.labels, point_class_names, out / "tsne.png").name


def sample_jobs(params: Params, scenes_dir: Path) -> list[SceneSampleJob]:
    """The split's scenes (at most tsne_max_scenes of them), each asked for an equal share of tsne_points."""
    splits = read_splits(scenes_dir)
    scenes = sorted(scene for scene, split in splits.items() if split == params.tsne_scenes)
    if not scenes:
        raise ValueError(f"tsne_scenes: no scene of {scenes_dir} is in split {params.tsne_scenes!r}; "
                         f"splits present: {sorted(set(splits.values()))}")
    if len(scenes) > params.tsne_max_scenes:
        rng = np.random.default_rng(params.seed)
        scenes = sorted(rng.choice(scenes, params.tsne_max_scenes, replace=False).tolist())
    shares = np.full(len(scenes), params.tsne_points // len(scenes))
    shares[: params.tsne_points % len(scenes)] += 1
    return [SceneSampleJob(scene, int(share), params.seed) for scene, share in zip(scenes, shares)]


def sample_scene(job: SceneSampleJob, *, scenes_dir: Path, pretrain_dir: Path) -> PointSample:
    """Embed the whole scene (a point's feature depends on its neighbours), then keep the sampled labelled points."""
    import torch

    from pix2point.models.backbone import build_backbone, embed_points, load_backbone

    points = read_points(scenes_dir, job.scene)
    labelled = np.flatnonzero(points.label >= 0)
    rng = np.random.default_rng([job.seed, *job.scene.encode()])
    chosen = np.sort(rng.choice(labelled, min(job.points, len(labelled)), replace=False))
    pretrained, spec = load_backbone(pretrain_dir)
    torch.manual_seed(job.seed)  # the same random network in every task
    random_init = build_backbone(spec)
    return PointSample(
        labels=points.label[chosen].astype(np.int64),
        input_rgb_xyz=np.hstack([points.rgb[chosen] / 255.0, points.xyz[chosen]]),
        pretrained=embed_points(pretrained, spec, points.xyz, points.rgb)[chosen].numpy(),
        random_init=embed_points(random_init, spec, points.xyz, points.rgb)[chosen].numpy(),
    )


def probe_scores(sample: PointSample, seed: int) -> list[ProbeScore]:
    from pix2point.evaluation.feature_probe import linear_probe

    feature_sets = {"pretrained": sample.pretrained, "random_init": sample.random_init, "input_rgb_xyz": sample.input_rgb_xyz}
    return [linear_probe(name, features, sample.labels, seed) for name, features in feature_sets.items()]
