"""PPKT: contrastive pixel-to-point knowledge transfer (Liu et al. 2021), as re-implemented in valeoai/SLidR.

The student (sparse UNet + projection head) embeds voxels; the UPL embeds the frozen teacher's features at
pixels; InfoNCE pulls each sampled point towards the pixel it is seen at and away from the other pixels.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from pix2point.io.arrow import write_table
from pix2point.io.features_table import feature_metadata
from pix2point.io.samples_table import FrameSample, sample_refs
from pix2point.io.scenes_table import read_splits
from pix2point.models.backbone import BackboneSpec, build_backbone, point_input_features, save_backbone
from pix2point.models.heads import ProjectionHead
from pix2point.models.upl import UpsamplingProjection
from pix2point.training.augment import (
    PairCrop,
    PointAugmentation,
    augment_points,
    cuboid_dropped,
    mirror_columns,
    pairs_in_crop,
)
from pix2point.training.runtime.determinism import StepStreams
from pix2point.training.runtime.device import to_device
from pix2point.training.pretraining.infonce import info_nce
from pix2point.training.loop import StepTraining, run_steps
from pix2point.training.pretraining.frame_stream import StreamSpec
from pix2point.training.runtime.sample_stream import Samples, SampleStream
from pix2point.models.voxelize import SparseBatch, collate_sparse, voxelize

LOSS_FILE = "loss.parquet"


@dataclass(frozen=True)
class PPKTConfig:
    scenes_dir: Path
    features_dir: Path
    pairs_dir: Path
    out: Path
    backbone: BackboneSpec
    dim: int
    temperature: float
    num_pairs: int  # point-pixel pairs per step and worker (the stage's global num_pairs / num_workers)
    frames_per_batch: int  # frames per step and worker (the stage's global frames_per_batch / num_workers)
    steps: int
    learning_rate: float
    momentum: float
    weight_decay: float
    augmentation: PointAugmentation
    flip_2d: bool  # mirror each frame with probability 0.5 (needs features2d's mirrored maps)
    checkpoint_every: int
    seed: int
    crop_2d: PairCrop | None = None  # SLidR's random resized crop: only pairs inside a random window train
    drop_cuboids: int | None = None  # SLidR's DropCuboids, unless fewer than this many points would remain
    num_workers: int = 1
    prefetch_batches: int = 2  # steps' batches Ray Data reads ahead of the training step

    def stream_spec(self) -> StreamSpec:
        """The training split's sample catalogue and order, for the readers (built on the driver)."""
        refs = sample_refs(self.pairs_dir, training_scenes(self.scenes_dir))
        if not refs:
            raise ValueError(f"no kept frame of the training scenes has pixel-point pairs in {self.pairs_dir}")
        return StreamSpec.from_refs(refs, pairs_dir=self.pairs_dir, features_dir=self.features_dir,
                                    flip_2d=self.flip_2d, seed=self.seed, per_rank=self.frames_per_batch,
                                    world=self.num_workers)


class PPKTModel(nn.Module):
    def __init__(self, backbone: nn.Module, backbone_channels: int, teacher_channels: int, dim: int):
        super().__init__()
        self.backbone = backbone
        self.head = ProjectionHead(backbone_channels, dim)
        # Half-pixel convention: the teacher's map covers the resized image edge to edge, as interpolate does.
        self.upl = UpsamplingProjection(teacher_channels, dim, align_corners=False)

    def forward(self, batch: SparseBatch, sample: torch.Tensor, point: torch.Tensor, teacher_features: torch.Tensor,
                u: torch.Tensor, v: torch.Tensor, image_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        tensor = batch.sparse_tensor()
        voxel_embeddings = self.head(self.backbone(tensor)).F
        point_embeddings = voxel_embeddings[batch.feature_rows(tensor, sample, point)]
        pixel_embeddings = self.upl.project_at_pixels(teacher_features, sample, u, v, image_size)
        return point_embeddings, pixel_embeddings


@dataclass(frozen=True)
class PPKTBatch:
    sparse: SparseBatch
    sample: torch.Tensor  # [N] which frame of the batch each sampled pair comes from
    point: torch.Tensor  # [N] index of the pair's point within that frame's points
    u: torch.Tensor
    v: torch.Tensor
    teacher_features: torch.Tensor  # [B, C, h, w] float32
    image_size: tuple[int, int]


def make_batch(samples: list[FrameSample], config: PPKTConfig, rng: np.random.Generator) -> PPKTBatch:
    sizes = {sample.image_size for sample in samples}
    if len(sizes) != 1:
        raise ValueError(f"frames of one batch need one color image size, got {sorted(sizes)}")
    (image_size,) = sizes
    voxelized, features, picks, pixels = [], [], [], []
    per_frame = max(1, config.num_pairs // len(samples))
    for sample in samples:
        if config.drop_cuboids is not None:
            sample = subset(sample, np.flatnonzero(cuboid_dropped(sample.xyz, rng, config.drop_cuboids)))
        pairable = (np.arange(len(sample.xyz)) if config.crop_2d is None
                    else pairs_in_crop(sample.pixels, image_size, rng, config.crop_2d))
        xyz = augment_points(sample.xyz, rng, config.augmentation)
        teacher, u = teacher_map_and_columns(sample, flip=config.flip_2d and rng.random() < 0.5)
        voxels = voxelize(torch.from_numpy(xyz), config.backbone.voxel_size)
        voxelized.append((voxels, voxels.voxel_features(point_input_features(sample.rgb, config.backbone.input_features))))
        features.append(torch.from_numpy(teacher.astype(np.float32)))
        chosen = rng.choice(pairable, size=min(per_frame, len(pairable)), replace=False)
        picks.append(chosen)
        pixels.append(np.stack([u[chosen], sample.pixels[chosen, 1]], axis=1))
    sample_index = np.concatenate([np.full(len(p), b) for b, p in enumerate(picks)])
    pixels = np.concatenate(pixels)
    return PPKTBatch(
        sparse=collate_sparse(voxelized),
        sample=torch.from_numpy(sample_index).long(),
        point=torch.from_numpy(np.concatenate(picks)).long(),
        u=torch.from_numpy(pixels[:, 0]).float(), v=torch.from_numpy(pixels[:, 1]).float(),
        teacher_features=torch.stack(features), image_size=image_size,
    )


def subset(sample: FrameSample, keep: np.ndarray) -> FrameSample:
    """The frame with only the points (and their pairs) at indices `keep`."""
    return dataclasses.replace(sample, xyz=sample.xyz[keep], rgb=sample.rgb[keep], pixels=sample.pixels[keep])


def teacher_map_and_columns(sample: FrameSample, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """The [C, h, w] teacher map a frame's pairs meet and their [P] pixel columns u.

    Under the flip (SLidR utils/transforms.py FlipHorizontal, which mirrors the image before the teacher
    runs) that is the teacher's map of the mirrored image at the mirrored columns. Mirroring the unflipped
    map instead would change nothing: a 1x1 projection and bilinear sampling commute with the mirror, so
    every point would meet the same embedding. Raises ValueError when the sample has no mirrored map."""
    if not flip:
        return sample.features, sample.pixels[:, 0]
    if sample.features_mirrored is None:
        raise ValueError("flip_2d needs the teacher's maps of the mirrored images: run features2d with mirrored: true")
    return sample.features_mirrored, mirror_columns(sample.pixels[:, 0], sample.image_size[0])


@dataclass
class PPKTTraining(StepTraining):
    """One worker's training; `step()` is the whole per-step work, shared by Ray Train and the bench."""

    config: PPKTConfig
    samples: Samples

    def __post_init__(self) -> None:
        # The data path drew each frame's 2D flip and delivers the view it picked (io/samples_table.py).
        self.batch_config = dataclasses.replace(self.config, flip_2d=False)

    @property
    def seed(self) -> int:
        return self.config.seed

    def step(self, streams: StepStreams) -> tuple[dict[str, float], dict[str, float]]:
        """One optimiser step; returns ({loss}, {points in the batch, bytes read from storage for it, bytes of
        its samples, seconds waiting for them, seconds of the whole step, their ratio `data_wait`, and which
        samples it trained on})."""
        started = time.perf_counter()
        data = self.samples.next(streams.step)
        samples = [FrameSample.from_arrays(arrays) for arrays in data.samples]
        batch = make_batch(samples, self.batch_config, streams.numpy)
        loss = ppkt_loss(self.model, batch, self.config.temperature, self.device)
        self.optimise(loss)
        return {"loss": loss.item()}, {"points": sum(len(sample.xyz) for sample in samples),
                                       **data.costs(time.perf_counter() - started)}


def build_training(config: PPKTConfig, rank: int, device: torch.device, samples: Samples,
                   teacher_channels: int | None = None) -> PPKTTraining:
    """The worker's model (on `device`), SGD and cosine schedule. `teacher_channels`: the teacher maps' C,
    by default read from the features2d artefact (scripts/gpu_check.sh gives it, having no artefact)."""
    torch.manual_seed(config.seed)  # identical initial weights on every worker
    if teacher_channels is None:
        teacher_channels = int(feature_metadata(config.features_dir)["channels"])
    backbone = build_backbone(config.backbone)
    model = PPKTModel(backbone, backbone.out_channels, teacher_channels, config.dim).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    return PPKTTraining(model=model, optimizer=optimizer, schedule=schedule, rank=rank, device=device, config=config,
                        samples=samples)


def train_loop(config: PPKTConfig) -> None:
    """Ray Train worker loop: resumes from the latest checkpoint, writes the backbone and loss curve at the end.
    Samples come from this rank's Ray Dataset (training/runtime/sample_stream.py)."""
    import ray.train.torch  # here, not at the top: the step above runs without Ray (scripts/gpu_check.sh)

    rank = ray.train.get_context().get_world_rank()
    stream = SampleStream.for_rank(rank, config.frames_per_batch, config.prefetch_batches)
    training = build_training(config, rank, ray.train.torch.get_device(), stream)
    model, history, _ = run_steps(training, config.steps, config.checkpoint_every)
    if rank == 0:
        save_backbone(config.out, model.backbone, config.backbone)
        write_table(pa.Table.from_pylist(history), config.out / LOSS_FILE)


def ppkt_loss(model: nn.Module, batch: PPKTBatch, temperature: float, device: torch.device) -> torch.Tensor:
    """InfoNCE of one step's batch (built on the CPU), moved to `device` in one go first."""
    batch = to_device(batch, device)
    points, pixels = model(batch.sparse, batch.sample, batch.point, batch.teacher_features, batch.u, batch.v,
                           batch.image_size)
    return info_nce(points, pixels, temperature)


def training_scenes(scenes_dir: Path) -> list[str]:
    """Pretraining sees the training split only, so validation scenes stay unseen until evaluation."""
    return sorted(scene for scene, split in read_splits(scenes_dir).items() if split == "train")
