"""Stage `pretrain`: a 3D backbone pretrained with knowledge from a frozen 2D teacher. `method` picks what the
stage runs, and which inputs it reads:

- `ppkt` (inputs scenes, features2d, pairs): a MinkowskiEngine Res16UNet; writes `backbone.pt` +
  `backbone.json` (models/backbone.py) and `loss.parquet` (step, loss, points, lr, seconds, and the data
  path's cost: bytes_read, sample_bytes, data_wait_s, step_s, data_wait). Samples stream to the workers
  through Ray Data (training/runtime/sample_stream.py).
- `i2p_mae` (inputs objects, and views2d for guided masking or the 2D target): a Point-M2AE encoder;
  writes `encoder.pt` + `encoder.json` (models/point_m2ae.py), `loss.parquet` (step, loss, chamfer,
  feature_loss, objects, lr, seconds and the same data-path columns) and `pretraining.json` (masking,
  target_2d, mask_ratio, steps). Objects stream to the workers the same way, a row group per object.

Training runs on Ray Train; checkpoints live in the stage's scratch directory, so a killed run started
again with the same params resumes from the last one.
"""

from __future__ import annotations

import time
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from pix2point.io.features_table import feature_metadata
from pix2point.io.objects_table import split_rows
from pix2point.models.backbone_spec import BackboneSpec, InputFeatures, UNetSizeName
from pix2point.models.point_m2ae_spec import PointM2AESpec
from pix2point.training.param_groups import (
    AdamWParams,
    Masking,
    PointAugmentationParams,
    RayTrainParams,
    SaliencyDistribution,
    SGDParams,
    config_from_params,
)

if TYPE_CHECKING:  # the training code (torch, MinkowskiEngine, Ray) is imported by run: loading the pipeline stays light
    from pix2point.training.pretraining import i2p_mae, ppkt

VIEWS_INPUT = "views2d"


class PPKTParams(SGDParams, PointAugmentationParams, RayTrainParams):
    model_config = ConfigDict(extra="forbid")

    method: Literal["ppkt"] = "ppkt"  # PPKT/SLidR-style pixel-to-point InfoNCE distillation into a sparse 3D UNet
    # MinkowskiEngine UNet; PPKT: Res16UNet34C; tiny: 16-64 channels, for smoke runs
    backbone: UNetSizeName = "Res16UNet34C"
    input_features: InputFeatures = "rgb"  # per-voxel input: the scan's colour, or a constant 1 (geometry only)
    voxel_size: float = Field(0.025, gt=0)  # metres; PPKT: 2.5 cm
    dim: int = Field(64, ge=1)  # D, the shared embedding width
    temperature: float = Field(0.07, gt=0)  # InfoNCE softmax temperature; SLidR/PPKT: 0.07
    # Both are per step in total over the workers, each worker drawing an equal share (as SLidR's DDP, each
    # worker's InfoNCE takes its negatives from its own share); not divisible by num_workers is an error.
    num_pairs: int = Field(4096, ge=2)  # point-pixel pairs per step
    frames_per_batch: int = Field(8, ge=1)  # frames per step
    steps: int = Field(1000, ge=1)  # optimizer steps; the cosine schedule reaches 0 at the last
    learning_rate: float = Field(0.5, gt=0)  # SGD, cosine-annealed to 0; SLidR: 0.5
    flip_2d: bool = True  # SLidR's FlipHorizontal, p = 0.5: needs features2d's mirrored maps
    # SLidR's other mixed augmentations (config transforms_mixed), off here by default: ResizedCrop keeps only
    # the pairs inside a random window (area share crop_area, width/height in crop_ratio); DropCuboids drops
    # the points in a random cuboid. Either keeps more than min_pairs_kept pairs per frame, as SLidR's 1024.
    crop_2d: bool = False
    crop_area: tuple[float, float] = (0.3, 1.0)  # crop_2d window's share of the image area, uniform in [lo, hi]
    # crop_2d window's width / height, log-uniform in [lo, hi]; SLidR's crop_ratio
    crop_ratio: tuple[float, float] = (14 / 9, 17 / 9)
    drop_cuboids: bool = False  # SLidR's DropCuboids: drop the points in one random cuboid per frame
    min_pairs_kept: int = Field(1024, ge=1)  # crop_2d / drop_cuboids redraw or skip below this many pairs (points)
    checkpoint_every: int = Field(50, ge=1)  # steps between checkpoints a killed run resumes from
    seed: int = 0  # initial weights (identical on every worker) and the sample order and augmentations
    prefetch_batches: int = Field(2, ge=0)  # steps' samples each worker's Ray Data stream reads ahead
    reader_actors: int = Field(1, ge=1)  # Ray Data actors per worker doing the targeted row-group reads
    # CPUs Ray reserves per reader actor. 0: readers share the training workers' CPUs (they mostly wait on
    # storage); a cluster with spare CPUs can reserve some so they never slow the step.
    reader_cpus: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _batches_split_evenly(self) -> PPKTParams:
        for key, least in (("frames_per_batch", 1), ("num_pairs", 2)):
            value = getattr(self, key)
            if value % self.num_workers or value // self.num_workers < least:
                raise ValueError(f"{key}={value} is per step over all workers and must split evenly among "
                                 f"num_workers={self.num_workers} (at least {least} each)")
        return self


class I2PMAEParams(AdamWParams, RayTrainParams):
    """Defaults: I2P-MAE's ShapeNet pretraining (docs/methods.md), warm-up counted in steps."""

    model_config = ConfigDict(extra="forbid")

    # I2P-MAE: 2D-guided masked autoencoding of object clouds, Point-M2AE encoder
    method: Literal["i2p_mae"] = "i2p_mae"
    num_groups: tuple[int, ...] = (512, 256, 64)  # tokens per scale, finest first
    group_sizes: tuple[int, ...] = (16, 8, 8)  # k nearest neighbours gathered per token, per scale
    encoder_dims: tuple[int, ...] = (96, 192, 384)  # token width per scale; the last is the encoder's output width
    encoder_depths: tuple[int, ...] = (5, 5, 5)  # transformer blocks per scale
    num_heads: int = Field(6, ge=1)  # attention heads in every block; divides each encoder_dims entry
    # hidden widths of the scale-0 mini-PointNet token embedding
    token_embed_dims: tuple[int, int, int] = (128, 256, 512)
    decoder_depths: tuple[int, ...] = (1, 1)  # decodes the coarsest scales; reconstructs at the finest of them
    # share of the coarsest scale's tokens masked (finer scales follow it); I2P-MAE: 0.8
    mask_ratio: float = Field(0.8, gt=0, lt=1)
    masking: Masking = "guided"  # guided: 2D saliency picks the visible tokens (needs views2d)
    saliency_temperature: float = Field(1.0, gt=0)  # softmax(saliency / T); the paper's T = 1
    # reference: each view's saliency a distribution over its cells (near-uniform softmax, as I2P-MAE);
    # min_max: each view rescaled to [0, 1] first (a sharper softmax)
    saliency_distribution: SaliencyDistribution = "reference"
    target_2d: bool = True  # visible tokens also reconstruct the 3 views' 2D features (needs views2d)
    drop_path_rate: float = Field(0.1, ge=0, lt=1)  # the reference's stochastic depth, last block's rate
    batch_size: int = Field(64, ge=1)  # objects per step and worker
    steps: int = Field(1000, ge=1)  # optimizer steps of batch_size objects per worker
    # Point-M2AE augments with a per-axis scale in (2/3, 3/2) and a translation of 0.2; I2P-MAE re-projects the
    # augmented cloud every step, so its 2D targets match it. views2d projects each object once, and both
    # transforms change its depth images, so the default is no augmentation; with views2d in use (guided
    # masking or target_2d) anything else is an error, since the targets would belong to another cloud.
    scale_range: tuple[float, float] = (1.0, 1.0)
    # shift per axis drawn uniformly in [-t, t] (object units; unit sphere when normalized); 0: none
    translate: float = Field(0.0, ge=0)
    seed: int = 0  # initial weights, object order, masks and augmentations

    @model_validator(mode="after")
    def _buildable(self) -> I2PMAEParams:
        self.encoder_spec()
        augmented = self.scale_range != (1.0, 1.0) or self.translate != 0
        if augmented and (self.masking == "guided" or self.target_2d):
            raise ValueError(f"scale_range {list(self.scale_range)} and translate {self.translate} would move the "
                             f"cloud away from the one views2d projected, so its 2D saliency and targets would not "
                             f"match it: keep scale_range [1, 1] and translate 0 with masking guided or target_2d")
        if not 0 < len(self.decoder_depths) <= len(self.num_groups):
            raise ValueError(f"decoder_depths {self.decoder_depths} needs 1 to {len(self.num_groups)} entries")
        return self

    def encoder_spec(self) -> PointM2AESpec:
        return PointM2AESpec(self.num_groups, self.group_sizes, self.encoder_dims, self.encoder_depths,
                             self.num_heads, self.token_embed_dims)


Params = Annotated[PPKTParams | I2PMAEParams, Field(discriminator="method")]


def run(params: PPKTParams | I2PMAEParams, inputs: dict[str, Path], out: Path, scratch: Path) -> dict:
    from pix2point.training.pretraining import i2p_mae, ppkt

    if isinstance(params, I2PMAEParams):
        config = i2p_mae_config(params, inputs, out)
        return _fit(i2p_mae.train_loop, config, params, scratch, "i2p_mae",
                    **streamed(config.stream_source(), params.steps, scratch, "i2p_mae"))
    config = ppkt_config(params, inputs, out)
    return _fit(ppkt.train_loop, config, params, scratch, "ppkt",
                **streamed(config.stream_spec(), params.steps, scratch, "ppkt", params.reader_actors, params.reader_cpus))


def streamed(source: Any, steps: int, scratch: Path, name: str, reader_actors: int = 1,
             reader_cpus: float = 0.0) -> dict[str, Any]:
    """fit()'s datasets and their config: each rank's samples from the step the checkpoint holds on, unsplit
    and in order (training/runtime/sample_stream.py says why)."""
    from pix2point.training.runtime.distributed import checkpointed_step
    from pix2point.training.runtime.sample_stream import trainer_data

    return trainer_data(source, checkpointed_step(scratch, name), steps, reader_actors, reader_cpus)


def _fit(train_loop: Callable[[Any], None], config: Any, params: PPKTParams | I2PMAEParams, scratch: Path,
         name: str, **data: Any) -> dict:
    from pix2point.training.runtime.distributed import fit

    started = time.perf_counter()
    result = fit(train_loop, config, num_workers=params.num_workers, cpus_per_worker=params.cpus_per_worker,
                 use_gpu=params.use_gpu, storage=scratch, name=name,
                 deterministic=params.deterministic, **data)
    final = result.metrics
    return {
        "steps": final["step"],
        "final_loss": round(final["loss"], 4),
        "resumed_from_step": final["resumed_from_step"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def ppkt_config(params: PPKTParams, inputs: dict[str, Path], out: Path) -> ppkt.PPKTConfig:
    """The run's config, each worker's share of the batch; flip_2d without features2d's mirrored maps is an
    error naming both params, raised before any worker starts."""
    from pix2point.training.pretraining import ppkt
    from pix2point.training.augment import PairCrop

    if params.flip_2d and not feature_metadata(inputs["features2d"]).get("mirrored", False):
        raise ValueError(f"pretrain param flip_2d needs the teacher's maps of the mirrored images, which "
                         f"{inputs['features2d']} lacks: run features2d with mirrored: true, or set flip_2d: false")
    return config_from_params(
        ppkt.PPKTConfig, params, scenes_dir=inputs["scenes"], features_dir=inputs["features2d"],
        pairs_dir=inputs["pairs"], out=out, backbone=BackboneSpec(params.backbone, params.input_features, params.voxel_size),
        # per worker: the params are per step over all workers (PPKTParams checks they split evenly)
        num_pairs=params.num_pairs // params.num_workers, frames_per_batch=params.frames_per_batch // params.num_workers,
        augmentation=params.point_augmentation(),
        crop_2d=PairCrop(params.crop_area, params.crop_ratio, params.min_pairs_kept) if params.crop_2d else None,
        drop_cuboids=params.min_pairs_kept if params.drop_cuboids else None,
    )


def i2p_mae_config(params: I2PMAEParams, inputs: dict[str, Path], out: Path,
                   train_objects: int | None = None) -> i2p_mae.I2PMAEConfig:
    """The run's config; guided masking and the 2D target read the views2d artefact, so without that input
    they are an error naming the param, raised before any worker starts. `train_objects`: the training
    split's size, by default counted in the objects artefact (scripts/gpu_check.sh, having none, gives it)."""
    for key, needs_views in (("masking", params.masking == "guided"), ("target_2d", params.target_2d)):
        if needs_views and VIEWS_INPUT not in inputs:
            raise ValueError(f"pretrain method i2p_mae: param {key!r} = {getattr(params, key)!r} needs the "
                             f"{VIEWS_INPUT!r} stage among the stage's inputs (it has {sorted(inputs)}); add it, "
                             f"or set masking: random and target_2d: false")
    from pix2point.training.pretraining import i2p_mae

    return config_from_params(
        i2p_mae.I2PMAEConfig, params, objects_dir=inputs["objects"], views_dir=inputs.get(VIEWS_INPUT), out=out,
        encoder=params.encoder_spec(),
        # A split smaller than a batch trains on all of it each step (each object once).
        batch_size=min(params.batch_size, train_objects if train_objects is not None
                       else len(split_rows(inputs["objects"], "train"))),
    )
