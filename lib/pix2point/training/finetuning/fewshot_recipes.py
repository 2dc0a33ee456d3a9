"""How each network family trains in a few-shot episode: the model for N classes, its optimiser and schedule, its
loss, and the batches it sees (training/finetuning/fewshot.py runs the episode).

- `PointM2AERecipe`: I2P-MAE's ModelNet40 fine-tuning (ZrrSkywalker/I2P-MAE cfgs/fine-tuning/modelnet40.yaml,
  models/I2P_MAE_Finetune.py; the head of models/point_m2ae_classifier.py) on Point-MAE's few-shot schedule
  (Pang-Yatian/Point-MAE cfgs/fewshot.yaml): AdamW, linear warm-up then cosine, gradient clipping, per-axis
  scale and shift, the encoder from a pretrain artefact or random.
- `Image2PointRecipe`: the classify stage's training (training/finetuning/classification.py): the sparse twin of a 2D
  network, random or inflated from ImageNet (models/object_classifier.py), SGD with cosine annealing,
  Image2Point's augmentation, voxelised input.

Batches are drawn and augmented on the CPU and handed over on the episode's device (training/finetuning/fewshot.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2point.models.classifier_spec import ClassifierSpec, FipMode, Init
from pix2point.models.point_m2ae import PointM2AESpec
from pix2point.models.point_m2ae_classifier import (
    PointM2AEClassifier,
    TokenPooling,
    load_pretrained_encoder,
    smoothed_cross_entropy,
)
from pix2point.training.finetuning.object_data import ObjectAugmentation, augment_object, object_batch
from pix2point.training.finetuning.object_finetuning_data import (
    CloudAugmentation, evaluation_clouds, fps_pools, pool_size, training_clouds)
from pix2point.training.schedules import warmup_cosine
from pix2point.models.voxelize import Rounding
from pix2point.training.weight_decay import weight_decay_groups

Optimisation = tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]


@dataclass(frozen=True)
class PointM2AERecipe:
    spec: PointM2AESpec  # the pretrained encoders' spec, with the fine-tuning's group sizes
    encoder_dir: Path | None  # the pretrain artefact whose encoder.pt starts the run; None: random weights
    pooling: TokenPooling
    local_radius: tuple[float, ...]
    drop_path_rate: float
    label_smoothing: float
    points: int  # per object and step
    learning_rate: float
    weight_decay: float
    warmup_epochs: int
    grad_clip: float  # max gradient L2 norm; 0: off
    augmentation: CloudAugmentation

    def build(self, ways: int) -> nn.Module:
        model = PointM2AEClassifier(self.spec, ways, self.pooling, self.local_radius, self.drop_path_rate)
        if self.encoder_dir is not None:
            load_pretrained_encoder(model, self.encoder_dir)
        return model

    def optimisation(self, model: nn.Module, steps: int, epochs: int) -> Optimisation:
        """AdamW; the warm-up takes warmup_epochs / epochs of the `steps` (exactly warmup_epochs epochs when the
        episode trains whole epochs)."""
        optimizer = torch.optim.AdamW(weight_decay_groups(model, self.weight_decay), lr=self.learning_rate)
        return optimizer, warmup_cosine(optimizer, steps, round(steps * self.warmup_epochs / epochs))

    def training_batch(self, clouds: np.ndarray, rng: np.random.Generator, device: torch.device) -> torch.Tensor:
        """[B, N, 3] support objects -> [B, points, 3] on `device`: a random `points` of each one's FPS pool,
        augmented (on the CPU)."""
        pools = fps_pools(clouds, pool_size(self.points, clouds.shape[1]))
        return training_clouds(clouds, pools, self.points, rng, self.augmentation).to(device)

    def evaluation_batch(self, clouds: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(evaluation_clouds(clouds, self.points))).to(device)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return smoothed_cross_entropy(logits, labels, self.label_smoothing)


@dataclass(frozen=True)
class Image2PointRecipe:
    classifier: ClassifierSpec  # num_classes is replaced by the episode's ways
    init: Init
    fip: FipMode
    learning_rate: float
    momentum: float
    weight_decay: float
    voxel_size: float  # in object radii
    voxel_rounding: Rounding
    augmentation: ObjectAugmentation
    grad_clip: float = 0.0  # classify does not clip

    def build(self, ways: int) -> nn.Module:
        from pix2point.models.fip import apply_fip
        from pix2point.models.object_classifier import build_classifier

        model, _ = build_classifier(replace(self.classifier, num_classes=ways), self.init)
        apply_fip(model, model.trunk, self.fip)
        return model

    def optimisation(self, model: nn.Module, steps: int, epochs: int) -> Optimisation:
        from pix2point.models.fip import trainable_parameters

        optimizer = torch.optim.SGD(trainable_parameters(model), lr=self.learning_rate, momentum=self.momentum,
                                    weight_decay=self.weight_decay)
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)

    def training_batch(self, clouds: np.ndarray, rng: np.random.Generator, device: torch.device):
        return object_batch([augment_object(cloud, rng, self.augmentation) for cloud in clouds], self.voxel_size,
                            self.voxel_rounding, device)

    def evaluation_batch(self, clouds: np.ndarray, device: torch.device):
        return object_batch(list(clouds), self.voxel_size, self.voxel_rounding, device)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, labels)


Recipe = PointM2AERecipe | Image2PointRecipe
