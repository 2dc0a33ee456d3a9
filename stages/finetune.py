"""Stage `finetune`: semantic segmentation of the labelled scenes, from scratch or from the pretrained backbone.

One run per (init, label fraction, seed); every run gets the same number of optimiser steps, so a run with
fewer labels sees them more often rather than training less. The backbone's size, input features and voxel
size come from the pretrain artefact, so scratch and pretrained runs train the same network. Runs train
side by side, each its own Ray Train run (training/runtime/trials.py: `max_concurrent_runs`); a killed stage keeps
the runs that finished and resumes the others from their own checkpoints.
Writes the contract of pix2point/io/finetune_table.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from pix2point.io.finetune_table import write_history, write_runs
from pix2point.io.scenes_table import class_names, scene_names
from pix2point.models.backbone_spec import BACKBONE_WEIGHTS, load_backbone_spec
from pix2point.training.param_groups import PointAugmentationParams, RunGridParams, SGDParams, config_from_params
from pix2point.training.runtime.run_grid import RunSpec, scene_runs
from pix2point.training.finetuning.segmentation_data import LabelUnit
from stages.scenes import require_splits



class Params(SGDParams, PointAugmentationParams, RunGridParams):
    model_config = ConfigDict(extra="forbid")

    # backbone start: random, or the pretrain stage's weights
    inits: list[Literal["scratch", "pretrain"]] = ["scratch", "pretrain"]
    # Label budgets, read per label_unit: a share of the training scenes (scenes), of each scene's points
    # (points), or a number of labelled points per scene (points_per_scene). ScanNet's data-efficient
    # benchmark: scenes [0.01, 0.05, 0.1, 0.2] and points_per_scene [20, 50, 100, 200] (label_budget.py).
    label_fractions: list[float] = [0.1, 1.0]
    label_unit: LabelUnit = "scenes"  # how label_fractions are read: scenes, points or points_per_scene (above)
    # one run per fraction x init x seed; it draws the labelled subset, head init and batches
    seeds: list[int] = [0, 1, 2]
    steps: int = Field(300, ge=1)  # optimizer steps per run
    eval_every: int = Field(25, ge=1)  # steps between val mIoU evaluations (and one at the last step)
    scenes_per_batch: int = Field(2, ge=1)  # whole scenes per step and worker (all the run's when fewer)
    # Without `deterministic`: the first run is trained this many more times with the same seed, and the
    # evaluate report gives their spread (run-to-run drift) next to the spread over seeds.
    drift_repeats: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _budgets_in_range(self) -> Params:
        if self.label_unit == "points_per_scene":
            bad = [count for count in self.label_fractions if count < 1 or count != int(count)]
            if bad:
                raise ValueError(f"label_unit points_per_scene: label_fractions are labelled points per scene, whole numbers >= 1, got {bad}")
            return self
        bad = [fraction for fraction in self.label_fractions if not 0 < fraction <= 1]
        if bad:
            raise ValueError(f"label fractions must lie in (0, 1], got {bad}")
        return self


def preflight(params: Params, inputs: dict[str, Any]) -> None:
    """Before the run starts (the engine's preflight): this stage trains on its scenes input's train split and
    scores its val split, so a scenes stage that would leave one empty is a ValueError naming the params that
    fix it (stages/scenes.py)."""
    require_splits(inputs["scenes"], ("train", "val"))


def run(params: Params, inputs: dict[str, Path], out: Path, scratch: Path) -> dict:
    # Imported here: the training code needs torch, MinkowskiEngine and Ray, which loading the pipeline must not.
    from pix2point.training.runtime.sample_stream import Segment, segments_trainer_data
    from pix2point.training.finetuning.segmentation import FinetuneConfig, train_loop
    from pix2point.training.finetuning.segmentation_data import SceneSource
    from pix2point.training.runtime.trials import run_outputs, train_grid_stage

    scenes_dir = inputs["scenes"]
    runs = run_specs(params)
    config = config_from_params(
        FinetuneConfig, params, scenes_dir=scenes_dir, pretrained_backbone=inputs["pretrain"] / BACKBONE_WEIGHTS,
        out=run_outputs(scratch), backbone=load_backbone_spec(inputs["pretrain"]),
        class_names=tuple(class_names(scenes_dir, scene_names(scenes_dir)[0])), runs=runs,
        augmentation=params.point_augmentation())
    # Each run streams its own training scenes (its label budget) to its trainer's workers.
    config_for = lambda slot: replace(config, runs=slot, sources={run.name: SceneSource.for_run(  # noqa: E731
        scenes_dir, run.label_fraction, params.label_unit, run.seed, params.scenes_per_batch, params.num_workers)
        for run in slot})
    data_for = lambda slot_config, starts: segments_trainer_data(  # noqa: E731
        [Segment(name, slot_config.sources[name], start, params.steps) for name, start in starts.items()])
    return train_grid_stage(
        train_loop, config_for, runs, params, out=out, scratch=scratch, data_for=data_for,
        write_runs=lambda results: write_runs(out, results, config.class_names, config.label_unit, params.deterministic),
        write_history=lambda history: write_history(out, history), report=lambda records: {"runs": len(runs)})


def run_specs(params: Params) -> tuple[RunSpec, ...]:
    """The grid, then (normal mode only) `drift_repeats` same-seed repeats of its first run."""
    return scene_runs(params.inits, params.label_fractions, params.seeds, params.drift_repeats, params.deterministic)
