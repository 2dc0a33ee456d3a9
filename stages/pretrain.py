"""Stage `pretrain`: a 3D backbone pretrained from the frozen 2D teacher's features (method `ppkt`).

Writes `backbone.pt` + `backbone.json` (models/backbone.py), `loss.parquet` (step, loss, lr, seconds).
Training runs on Ray Train; checkpoints live in the stage's scratch directory, so a killed run started
again with the same params resumes from the last one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field

from pix2point.models.backbone import BackboneSpec, InputFeatures
from pix2point.models.res16unet import UNetSizeName
from pix2point.training.distributed import fit
from pix2point.training.params import PointAugmentationParams, RayTrainParams, SGDParams
from pix2point.training.ppkt import PPKTConfig, train_loop


class Params(SGDParams, PointAugmentationParams, RayTrainParams):
    model_config = ConfigDict(extra="forbid")

    method: Literal["ppkt"] = "ppkt"
    backbone: UNetSizeName = "Res16UNet34C"
    input_features: InputFeatures = "rgb"
    voxel_size: float = Field(0.025, gt=0)  # metres; PPKT: 2.5 cm
    dim: int = Field(64, ge=1)  # D, the shared embedding width
    temperature: float = Field(0.07, gt=0)
    num_pairs: int = Field(4096, ge=2)  # point-pixel pairs per step and worker
    frames_per_batch: int = Field(8, ge=1)
    steps: int = Field(1000, ge=1)
    learning_rate: float = Field(0.5, gt=0)
    flip_2d: bool = True
    checkpoint_every: int = Field(50, ge=1)
    seed: int = 0


def run(params: Params, inputs: dict[str, Path], out: Path, scratch: Path) -> dict:
    config = ppkt_config(params, inputs, out)
    started = time.perf_counter()
    result = fit(train_loop, config, num_workers=params.num_workers, cpus_per_worker=params.cpus_per_worker,
                 use_gpu=params.use_gpu, storage=scratch, name="ppkt")
    seconds = time.perf_counter() - started
    final = result.metrics
    return {
        "steps": final["step"],
        "final_loss": round(final["loss"], 4),
        "resumed_from_step": final["resumed_from_step"],
        "seconds": round(seconds, 1),
    }


def ppkt_config(params: Params, inputs: dict[str, Path], out: Path) -> PPKTConfig:
    return PPKTConfig(
        scenes_dir=inputs["scenes"], features_dir=inputs["features2d"], pairs_dir=inputs["pairs"], out=out,
        backbone=BackboneSpec(params.backbone, params.input_features, params.voxel_size),
        dim=params.dim, temperature=params.temperature, num_pairs=params.num_pairs,
        frames_per_batch=params.frames_per_batch, steps=params.steps, learning_rate=params.learning_rate,
        momentum=params.momentum, weight_decay=params.weight_decay,
        augmentation=params.point_augmentation(),
        flip_2d=params.flip_2d, checkpoint_every=params.checkpoint_every, seed=params.seed,
    )
