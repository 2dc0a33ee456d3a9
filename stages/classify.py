"""Stage `classify`: Image2Point object classification, a 2D network's sparse 3D twin trained from scratch or
inflated from the 2D ImageNet weights, under a FIP mode (models/fip.py), for every shots x seed.

Writes the contract of pix2point/io/classify_table.py, and a report (evaluation/classification_report.py):
accuracy per init x FIP x shots over seeds, the epochs each needs to reach `target_accuracy`, and each
inflated variant against the scratch baseline. Runs train side by side, each its own Ray Train run
(training/runtime/trials.py: `max_concurrent_runs`); a killed stage keeps finished runs and resumes the others.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pix2point.evaluation.report_note import ReportNoteParams
from pix2point.io.classify_table import read_history, read_runs, run_name, write_history, write_runs
from pix2point.io.objects_table import class_names, split_rows
from pix2point.io.paths import AbsolutePath
from pix2point.models.backbone_spec import Rounding
from pix2point.models.classifier_spec import (
    Axis,
    ClassifierNetwork,
    ClassifierSpec,
    FipMode,
    InflationOptions,
    Init,
    Pooling,
)
from pix2point.training.param_groups import RunGridParams, SGDParams, config_from_params
from pix2point.training.runtime.run_grid import with_drift_repeats

if TYPE_CHECKING:  # the training code (torch, MinkowskiEngine, Ray) is imported by run: loading the pipeline stays light
    from pix2point.training.finetuning.classification import ClassifyConfig, ClassifyRunSpec
    from pix2point.training.finetuning.object_data import ObjectAugmentation


class Variant(BaseModel):
    """What a run starts from and what it may train."""

    model_config = ConfigDict(extra="forbid")

    init: Init
    fip: FipMode = "all"


class Params(SGDParams, RunGridParams, ReportNoteParams):
    model_config = ConfigDict(extra="forbid")

    # 2D ImageNet network whose sparse 3D twin is trained, inflated or from scratch
    network: ClassifierNetwork = "efficientnet_lite0"
    teacher_weights: AbsolutePath | None = None  # 2D weights to inflate; the ResNets need them
    inflate_new_axis: Axis = "y"  # which 3D axis a 2D kernel is copied along (Image2Point: y, ModelNet's up)
    inflate_row_axis: Axis = "z"  # which 3D axis the kernel's rows run along (Image2Point: z; columns along x)
    inflate_scale_by_depth: bool = False  # divide the copies by k (Image2Point does not)
    # init x FIP mode per run (models/fip.py): io trains the input/output layers, iobn also BatchNorms, all
    # everything. scratch + io (a random frozen trunk) is the control for inflated + io: the gap between them is
    # what the 2D ImageNet weights add over random frozen filters (issue 22; not a run of the paper's).
    variants: list[Variant] = [Variant(init="scratch", fip="all"), Variant(init="inflated", fip="io"),
                               Variant(init="scratch", fip="io"), Variant(init="inflated", fip="iobn"),
                               Variant(init="inflated", fip="all")]
    # FIP io runs' peak learning rate (None: `learning_rate`, as the reference, which trains every mode at 0.1
    # for 100 epochs). Training only stem and classifier on a frozen trunk over a few hundred steps went further
    # at a smaller rate (docs/methods.md, Image2Point: what departs).
    io_learning_rate: float | None = Field(None, gt=0)
    shots: list[int | Literal["all"]] = [1, 5, 10, "all"]  # training objects per class
    seeds: list[int] = [0, 1, 2]  # one run per variant x shots x seed; it draws the shots, initial weights and batches
    epochs: int = Field(100, ge=1)  # passes over the run's training objects
    batch_size: int = Field(32, ge=1)  # objects per step and worker
    voxel_size: float = Field(0.05, gt=0)  # in object radii: objects are normalised into the unit sphere
    pooling: Pooling = "avg"  # global pooling of the last sparse features before the classifier
    # The twin's BatchNorm momentum (None: the 2D network's, 0.01 for EfficientNet): see models/object_classifier.py.
    batchnorm_momentum: float | None = Field(0.1, gt=0, le=1)
    voxel_rounding: Rounding = "round"  # Image2Point rounds xyz / voxel_size; "floor" as MinkowskiEngine does
    # Image2Point's augmentation, each step with its probability: per-axis scale, translation, uniform jitter.
    scale_range: tuple[float, float] = (0.9, 1.1)
    scale_probability: float = Field(0.9, ge=0, le=1)  # chance per object of the per-axis scale in scale_range
    translate: float = Field(0.2, ge=0)  # shift uniform in [-t, t] per axis, in object radii; Image2Point: 0.2
    translate_probability: float = Field(0.9, ge=0, le=1)  # chance per object of the shift
    jitter: float = Field(0.0125, ge=0)  # uniform in [-jitter, jitter] per point and axis
    jitter_probability: float = Field(0.7, ge=0, le=1)  # chance per object of the jitter
    target_accuracy: float = Field(0.8, gt=0, le=1)  # the report counts the epochs each run needs to reach it
    save_models: bool = False  # one state dict per run (14 MB each for Lite0)
    # Without `deterministic`: the first run is trained this many more times with the same seed, and the report
    # gives their spread (run-to-run drift) next to the spread over seeds.
    drift_repeats: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _sane_lists(self) -> Params:
        if not self.variants or not self.shots or not self.seeds:
            raise ValueError("variants, shots and seeds each need at least one entry")
        if any(isinstance(count, int) and count < 1 for count in self.shots):
            raise ValueError(f"shots must be positive counts per class or 'all', got {self.shots}")
        pairs = [(variant.init, variant.fip) for variant in self.variants]
        if len(set(pairs)) < len(pairs) or len(set(self.shots)) < len(self.shots) or len(set(self.seeds)) < len(self.seeds):
            raise ValueError("variants, shots and seeds must not repeat an entry (run names would collide)")
        return self

    def object_augmentation(self) -> ObjectAugmentation:
        from pix2point.training.finetuning.object_data import ObjectAugmentation

        return ObjectAugmentation(self.scale_range, self.scale_probability, self.translate, self.translate_probability,
                                  self.jitter, self.jitter_probability)


def run(params: Params, inputs: dict[str, Path], out: Path, scratch: Path) -> dict:
    from pix2point.evaluation.classification_report import REPORT_FILE, write_report
    from pix2point.training.finetuning.classification import epoch_steps, run_source, train_loop
    from pix2point.training.runtime.sample_stream import Segment, segments_trainer_data
    from pix2point.training.runtime.trials import run_outputs, train_grid_stage

    objects_dir = inputs["objects"]
    steps = epoch_steps(len(split_rows(objects_dir, "train")), params.batch_size, params.num_workers)
    config = classify_config(params, objects_dir, run_outputs(scratch), run_specs(params), steps)
    # Each run streams its own training objects (its few-shot subset) to its trainer's workers.
    config_for = lambda slot: replace(config, runs=slot, sources={run.name: run_source(  # noqa: E731
        objects_dir, run.shots, run.seed, params.batch_size, params.num_workers) for run in slot})
    data_for = lambda slot_config, starts: segments_trainer_data(  # noqa: E731
        [Segment(name, slot_config.sources[name], start, params.epochs * steps) for name, start in starts.items()])
    learning_rates = {fip: config.learning_rate_for(fip) for fip in dict.fromkeys(v.fip for v in params.variants)}
    return train_grid_stage(
        train_loop, config_for, config.runs, params, out=out, scratch=scratch, data_for=data_for,
        write_runs=lambda results: write_runs(out, results, list(config.class_names), params.network, steps),
        write_history=lambda history: write_history(out, history),
        report=lambda records: write_report(out, read_runs(out), read_history(out), params.target_accuracy,
                                            params.network, params.deterministic, learning_rates),
        report_file=out / REPORT_FILE)


def classify_config(params: Params, objects_dir: Path, out: Path, runs: tuple[ClassifyRunSpec, ...] = (),
                    steps_per_epoch: int = 1) -> ClassifyConfig:
    """The training settings `params` give the runs on the objects artefact `objects_dir` (the stage's, and
    the benches' that run its step plainly); models go under `out`."""
    from pix2point.training.finetuning.classification import ClassifyConfig

    names = tuple(class_names(objects_dir))
    return config_from_params(
        ClassifyConfig, params, objects_dir=objects_dir, out=out, classifier=classifier_spec(params, len(names)),
        class_names=names, runs=runs, augmentation=params.object_augmentation(), steps_per_epoch=steps_per_epoch)


def run_specs(params: Params) -> tuple[ClassifyRunSpec, ...]:
    """Shots outermost, so a killed stage has finished whole shot counts first; the drift repeats last."""
    from pix2point.training.finetuning.classification import ClassifyRunSpec

    grid = tuple(
        ClassifyRunSpec(run_name(variant.init, variant.fip, shots, seed), variant.init, variant.fip, shots, seed)
        for shots in (None if count == "all" else count for count in params.shots)
        for variant in params.variants for seed in params.seeds
    )
    return with_drift_repeats(grid, params.drift_repeats, params.deterministic)


def classifier_spec(params: Params, num_classes: int) -> ClassifierSpec:
    return ClassifierSpec(
        network=params.network, num_classes=num_classes, pooling=params.pooling, weights_path=params.teacher_weights,
        batchnorm_momentum=params.batchnorm_momentum,
        inflation=InflationOptions(scale_by_depth=params.inflate_scale_by_depth, new_axis=params.inflate_new_axis,
                                   row_axis=params.inflate_row_axis),
    )
