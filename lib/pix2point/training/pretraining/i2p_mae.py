"""I2P-MAE (Zhang et al., CVPR 2023): masked autoencoding of object point clouds on a Point-M2AE hierarchy,
with the visible tokens chosen by 2D saliency (or at random) and two targets, summed:

- masked tokens of the decoder's output scale reconstruct their group's points (Chamfer L2);
- visible tokens of that scale reconstruct the 3 views' 2D teacher features at each of their group's points
  (MSE), when `target_2d` is on.

Without saliency and the 2D target this is plain Point-M2AE masked autoencoding.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch import nn

from pix2point.io.arrow import write_table
from pix2point.models.point_groups import PointHierarchy, gather
from pix2point.models.point_m2ae import HierarchicalEncoder, PointM2AESpec, save_encoder
from pix2point.models.point_m2ae_decoder import HierarchicalDecoder
from pix2point.training.pretraining.chamfer import chamfer_l2
from pix2point.training.runtime.determinism import StepStreams
from pix2point.training.runtime.device import to_device
from pix2point.io.objects_table import objects_metadata, split_rows
from pix2point.io.views_table import views_path
from pix2point.training.i2p_mae_data import MAEBatch, check_views_match, streamed_batch
from pix2point.training.object_samples import ObjectSource
from pix2point.training.runtime.sample_stream import Samples, SampleStream
from pix2point.training.loop import StepTraining, run_steps
from pix2point.training.pretraining.masking import guided_visible, keep_count, propagate_visible, random_visible
from pix2point.training.param_groups import Masking, SaliencyDistribution
from pix2point.training.schedules import warmup_cosine
from pix2point.training.weight_decay import weight_decay_groups

LOSS_FILE = "loss.parquet"
PRETRAINING_FILE = "pretraining.json"  # how the encoder was pretrained: masking, target_2d, mask_ratio, steps


@dataclass(frozen=True)
class I2PMAEConfig:
    objects_dir: Path
    views_dir: Path | None  # needed for guided masking or the 2D target
    out: Path
    encoder: PointM2AESpec
    decoder_depths: tuple[int, ...]
    mask_ratio: float
    masking: Masking
    saliency_temperature: float
    saliency_distribution: SaliencyDistribution
    target_2d: bool
    batch_size: int  # objects per step and worker (at most the training split's objects)
    steps: int
    learning_rate: float
    weight_decay: float  # AdamW's, on weight matrices only (weight_decay_groups)
    drop_path_rate: float  # stochastic depth of the last encoder and decoder block
    warmup_steps: int
    scale_range: tuple[float, float]
    translate: float
    checkpoint_every: int
    seed: int
    num_workers: int = 1
    prefetch_batches: int = 2  # steps' objects Ray Data reads ahead of the training step

    def stream_source(self) -> ObjectSource:
        """The training split's objects in the shared stream's order (built on the driver): distinct objects
        in each step's batch, the order a function of (seed, step, rank)."""
        views = self.views_dir if needs_views(self) else None
        if views is not None:
            check_views_match(self.objects_dir, views)
        return ObjectSource(self.objects_dir, split_rows(self.objects_dir, "train"), self.seed, self.batch_size,
                            self.num_workers, views, self.saliency_distribution)


class Losses(NamedTuple):
    total: torch.Tensor
    chamfer: torch.Tensor
    feature: torch.Tensor  # 0 without the 2D target


class I2PMAE(nn.Module):
    def __init__(self, spec: PointM2AESpec, decoder_depths: tuple[int, ...], feature_channels: int | None,
                 mask_ratio: float, masking: Masking, saliency_temperature: float = 1.0, drop_path_rate: float = 0.0):
        super().__init__()
        self.encoder = HierarchicalEncoder(spec, drop_path_rate)
        self.decoder = HierarchicalDecoder(spec.encoder_dims, decoder_depths, spec.num_heads,
                                           drop_path_rate=drop_path_rate)
        if keep_count(spec.num_groups[-1], mask_ratio) == spec.num_groups[-1]:
            raise ValueError(f"mask_ratio {mask_ratio} masks none of the {spec.num_groups[-1]} coarsest tokens "
                             f"(int(mask_ratio * tokens) = 0): no token would be reconstructed and every step's "
                             f"Chamfer loss would be the mean over nothing, NaN; raise mask_ratio or num_groups")
        self.output_scale = spec.scales - len(decoder_depths)
        members, width = spec.group_sizes[self.output_scale], self.decoder.dims[-1]
        self.point_head = nn.Linear(width, 3 * members)
        self.feature_head = None if feature_channels is None else nn.Linear(width, feature_channels * members)
        self.mask_ratio, self.masking, self.saliency_temperature = mask_ratio, masking, saliency_temperature

    def forward(self, points: torch.Tensor, saliency: torch.Tensor | None, features: torch.Tensor | None,
                generator: torch.Generator) -> Losses:
        hierarchy = self.encoder.group(points)
        spec = self.encoder.spec
        top = spec.scales - 1
        if self.masking == "guided":
            top_saliency = gather(saliency, hierarchy.point_index[top])
            top_visible = guided_visible(top_saliency, self.mask_ratio, generator, self.saliency_temperature)
        else:
            top_visible = random_visible(points.shape[0], spec.num_groups[top], self.mask_ratio, generator)
        visible = propagate_visible(top_visible.to(points.device), hierarchy.neighbours, list(spec.num_groups))
        tokens = self.decoder(hierarchy, self.encoder(hierarchy, visible))
        seen = visible[self.output_scale]
        masked = tokens[~seen]
        predicted = self.point_head(masked).view(len(masked), -1, 3)
        chamfer = chamfer_l2(predicted, hierarchy.members(self.output_scale)[~seen])
        if self.feature_head is None:
            return Losses(chamfer, chamfer, torch.zeros((), device=points.device))
        target = feature_targets(features, hierarchy, self.output_scale, seen)
        feature = F.mse_loss(self.feature_head(tokens[seen]).view(target.shape), target)
        return Losses(chamfer + feature, chamfer, feature)


def feature_targets(features: torch.Tensor, hierarchy: PointHierarchy, scale: int, seen: torch.Tensor) -> torch.Tensor:
    """[B, N, F] per-point 2D features -> [L, K, F] float32: for each of the L visible tokens of `scale`
    (seen [B, G], in row-major order), the features of its K group members' points."""
    cloud, token = seen.nonzero(as_tuple=True)
    member_points = hierarchy.member_points(scale)[cloud, token]  # [L, K]
    return features[cloud[:, None], member_points].float()


@dataclass
class I2PMAETraining(StepTraining):
    """One worker's training; `step()` is the whole per-step work, shared by Ray Train and the bench."""

    config: I2PMAEConfig
    samples: Samples
    # The finest scales' output LayerNorms feed no loss (the decoder reads the coarsest scales); the original
    # runs DDP with find_unused_parameters too.
    has_unused_parameters: ClassVar[bool] = True

    @property
    def seed(self) -> int:
        return self.config.seed

    def step(self, streams: StepStreams) -> tuple[dict[str, float], dict[str, object]]:
        """One optimiser step -> (losses, {objects, the data path's cost and which objects it trained on})."""
        config = self.config
        started = time.perf_counter()
        data = self.samples.next(streams.step)
        batch = streamed_batch(data.samples, streams.numpy, config.scale_range, config.translate)
        losses = mae_losses(self.model, batch, streams.torch, self.device)
        self.optimise(losses.total)
        return ({"loss": losses.total.item(), "chamfer": losses.chamfer.item(), "feature_loss": losses.feature.item()},
                {"objects": len(batch.points), **data.costs(time.perf_counter() - started)})


def mae_losses(model: nn.Module, batch: MAEBatch, generator: torch.Generator, device: torch.device) -> Losses:
    """The losses of one step's batch (built on the CPU), moved to `device` in one go first; the masks are
    drawn from `generator`, on its own device (training/pretraining/masking.py)."""
    batch = to_device(batch, device)
    return model(batch.points, batch.saliency, batch.features, generator)


def needs_views(config: I2PMAEConfig) -> bool:
    return config.masking == "guided" or config.target_2d


def build_training(config: I2PMAEConfig, rank: int, device: torch.device, samples: Samples,
                   shapes: tuple[int, int | None] | None = None) -> I2PMAETraining:
    """The worker's model (on `device`), AdamW and warm-up cosine schedule. `shapes`: (points per object, the
    2D target's V * C channels or None), by default read from the objects and views2d artefacts
    (scripts/gpu_check.sh gives them, having no artefacts). ValueError when num_groups[0] exceeds the points."""
    torch.manual_seed(config.seed)  # identical initial weights on every worker
    points, channels = shapes if shapes is not None else (
        int(objects_metadata(config.objects_dir)["points_per_object"]), feature_channels(config) if config.target_2d else None)
    if config.encoder.num_groups[0] > points:
        raise ValueError(f"num_groups[0] = {config.encoder.num_groups[0]} exceeds the objects' "
                         f"{points} points per object")
    model = I2PMAE(config.encoder, config.decoder_depths, channels if config.target_2d else None,
                   config.mask_ratio, config.masking, config.saliency_temperature, config.drop_path_rate).to(device)
    optimizer = torch.optim.AdamW(weight_decay_groups(model, config.weight_decay), lr=config.learning_rate)
    schedule = warmup_cosine(optimizer, config.steps, config.warmup_steps)
    return I2PMAETraining(model=model, optimizer=optimizer, schedule=schedule, rank=rank, device=device, config=config,
                          samples=samples)


def feature_channels(config: I2PMAEConfig) -> int:
    """V * C: the 3 views' teacher channels side by side (i2p_mae_data.point_views), from views.parquet's schema."""
    views, _, channels = pq.read_schema(views_path(config.views_dir)).field("features").type.shape
    return views * channels


def train_loop(config: I2PMAEConfig) -> None:
    """Ray Train worker loop: resumes from the latest checkpoint, writes the encoder and loss curve at the end.
    Objects come from this rank's Ray Dataset (training/runtime/sample_stream.py)."""
    import ray.train.torch  # here, not at the top: the step above runs without Ray (scripts/gpu_check.sh)

    rank = ray.train.get_context().get_world_rank()
    stream = SampleStream.for_rank(rank, config.batch_size, config.prefetch_batches)
    training = build_training(config, rank, ray.train.torch.get_device(), stream)
    model, history, _ = run_steps(training, config.steps, config.checkpoint_every)
    if rank == 0:
        save_encoder(config.out, model.encoder)
        write_table(pa.Table.from_pylist(history), config.out / LOSS_FILE)
        (config.out / PRETRAINING_FILE).write_text(json.dumps(pretraining_description(config), indent=2))


def pretraining_description(config: I2PMAEConfig) -> dict:
    return {"method": "i2p_mae", "masking": config.masking, "target_2d": config.target_2d,
            "saliency_distribution": config.saliency_distribution if config.masking == "guided" else None,
            "mask_ratio": config.mask_ratio, "steps": config.steps}
