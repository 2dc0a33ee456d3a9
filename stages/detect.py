"""Stage `detect`: 3D object detection (VoteNet head on the sparse UNet), from scratch or from the pretrained
backbone, PPKT's and PointContrast's downstream protocol on ScanNet.

One run per (init, label fraction, seed), each the same number of optimiser steps; label_fraction is a share
of the training scenes chosen as `finetune` chooses them. Runs train side by side as `finetune`'s, each its
own Ray Train run (training/runtime/trials.py: `max_concurrent_runs`, per-run resume, trials.parquet). Boxes: VoteNet's 18 ScanNet classes from each
scene's annotation files (pix2point/io/scannet_boxes.py). Backbone size, input features and voxel size come
from the pretrain artefact. Writes the contract of pix2point/io/detect_table.py, report.md included.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from pix2point.evaluation.report_note import ReportNoteParams
from pix2point.io.detect_table import REPORT_FILE, write_history, write_runs
from pix2point.io.scannet_boxes import SCANNET18_CLASS_NAMES
from pix2point.models.backbone_spec import BACKBONE_WEIGHTS, load_backbone_spec
from pix2point.training.param_groups import RunGridParams, config_from_params
from pix2point.training.runtime.run_grid import scene_runs
from stages.scenes import require_splits


class Params(RunGridParams, ReportNoteParams):
    model_config = ConfigDict(extra="forbid")

    # backbone start: random, or the pretrain stage's weights
    inits: list[Literal["scratch", "pretrain"]] = ["scratch", "pretrain"]
    label_fractions: list[Annotated[float, Field(gt=0, le=1)]] = [0.5, 1.0]  # shares of the training scenes
    # one run per fraction x init x seed; it draws the labelled scenes, head init and batches
    seeds: list[int] = [0, 1, 2]
    steps: int = Field(300, ge=1)  # optimizer steps per run; VoteNet: ~180 epochs
    eval_every: int = Field(50, ge=1)  # steps between val mAP@0.25 and @0.5 evaluations (and one at the last step)
    scenes_per_batch: int = Field(2, ge=1)  # VoteNet: 8
    learning_rate: float = Field(1e-3, gt=0)  # VoteNet: Adam at 1e-3
    weight_decay: float = Field(0.0, ge=0)  # AdamW's decoupled decay; VoteNet: 0
    augment: bool = True  # VoteNet's: x/y flips, rotation about z within +-5 degrees
    num_seeds: int = Field(1024, ge=2)  # VoteNet: 1024
    num_proposals: int = Field(256, ge=1)  # VoteNet: 256
    group_radius: float = Field(0.3, gt=0)  # metres, VoteNet: 0.3
    group_size: int = Field(16, ge=1)  # VoteNet: 16
    head_width: int = Field(128, ge=8)  # VoteNet: 128 (proposals), 256 (voting)
    # Without `deterministic`: the first run is trained this many more times with the same seed, and the
    # report gives their spread (run-to-run drift) next to the spread over seeds.
    drift_repeats: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _proposals_from_seeds(self) -> Params:
        if self.num_proposals > self.num_seeds:
            raise ValueError(f"num_proposals ({self.num_proposals}) cannot exceed num_seeds ({self.num_seeds}): "
                             "proposals are clustered around votes, one per seed")
        return self


def preflight(params: Params, inputs: dict[str, Any]) -> None:
    """Before the run starts (the engine's preflight): this stage trains on its scenes input's train split and
    scores its val split, so a scenes stage that would leave one empty is a ValueError naming the params that
    fix it (stages/scenes.py)."""
    require_splits(inputs["scenes"], ("train", "val"))


def run(params: Params, inputs: dict[str, Path], out: Path, scratch: Path) -> dict:
    from pix2point.models.votenet import VoteHeadSpec
    from pix2point.training.finetuning.detection import DetectConfig, train_loop
    from pix2point.training.runtime.trials import run_outputs, train_grid_stage

    runs = scene_runs(params.inits, params.label_fractions, params.seeds, params.drift_repeats, params.deterministic)
    head = VoteHeadSpec(len(SCANNET18_CLASS_NAMES), params.num_seeds, params.num_proposals, params.group_radius,
                        params.group_size, params.head_width)
    config = config_from_params(
        DetectConfig, params, scenes_dir=inputs["scenes"], pretrained_backbone=inputs["pretrain"] / BACKBONE_WEIGHTS,
        out=run_outputs(scratch), backbone=load_backbone_spec(inputs["pretrain"]), head=head,
        class_names=SCANNET18_CLASS_NAMES, runs=runs)
    return train_grid_stage(
        train_loop, lambda slot: replace(config, runs=slot), runs, params, out=out, scratch=scratch,
        write_runs=lambda results: write_runs(out, results, list(SCANNET18_CLASS_NAMES)),
        write_history=lambda history: write_history(out, history),
        report=lambda records: report_runs(records, out, params.deterministic), report_file=out / REPORT_FILE)


def report_runs(records: list, out: Path, deterministic: bool) -> dict:
    """report.md of the finished runs (evaluation/detection_report.py) -> the stage's metrics."""
    from pix2point.evaluation.detection_report import detect_drift, summarise, verdicts_metrics, write_report
    from pix2point.evaluation.drift import drift_document

    results = [record.result for record in records]
    left_out = {scene: reasons for record in records
                for scene, reasons in record.state.get("left_out_objects", {}).items()}
    cells = summarise([result for result in results if result.repeat == 0])
    write_report(out / REPORT_FILE, cells, results, list(SCANNET18_CLASS_NAMES), deterministic)
    return {
        "runs": len(results),
        "resumed_runs": sum(record.resumed_from_step > 0 for record in records),
        # objects of aggregation.json without a box, per reason (io/scannet_boxes.py DROP_REASONS), over the
        # scenes the runs read; each is logged with its file when read
        "objects_left_out": dict(sum((Counter(reasons) for reasons in left_out.values()), Counter())),
        "scenes_with_objects_left_out": len(left_out),
        "cells": [cell.as_metrics() for cell in cells],
        "verdicts": verdicts_metrics(cells),
        "drift": drift_document(detect_drift(results), deterministic),
    }
