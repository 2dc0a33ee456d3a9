"""Point-M2AE / I2P-MAE fine-tuning classifier: the hierarchical encoder (point_m2ae.py) with all tokens
visible and local attention, its coarsest tokens pooled, and the reference's MLP head
(ZrrSkywalker/I2P-MAE models/I2P_MAE_Finetune.py, `cls_head_finetune`):

    pooled [B, P] -> Linear(P, 256) BN ReLU Dropout(0.5) -> Linear(256, 256) BN ReLU Dropout(0.5) -> Linear(256, K)

P = 2C for `pooling: concat` (mean- and max-pooled tokens side by side, the ScanObjectNN model) or C for `sum`
(their sum, the ModelNet40 model). The reference layer-norms the coarsest tokens with a fresh LayerNorm
before pooling; here the encoder's own last LayerNorm (pretrained with it) plays that part.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pix2point.models.checkpoints import load_fitting_weights
from pix2point.models.point_m2ae import HierarchicalEncoder, PointM2AESpec, load_encoder_spec
from pix2point.models.point_m2ae_spec import ENCODER_WEIGHTS

TokenPooling = Literal["concat", "sum"]
HEAD_WIDTH = 256
HEAD_DROPOUT = 0.5


def classifier_head(in_channels: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_channels, HEAD_WIDTH), nn.BatchNorm1d(HEAD_WIDTH), nn.ReLU(), nn.Dropout(HEAD_DROPOUT),
        nn.Linear(HEAD_WIDTH, HEAD_WIDTH), nn.BatchNorm1d(HEAD_WIDTH), nn.ReLU(), nn.Dropout(HEAD_DROPOUT),
        nn.Linear(HEAD_WIDTH, num_classes),
    )


class PointM2AEClassifier(nn.Module):
    def __init__(self, spec: PointM2AESpec, num_classes: int, pooling: TokenPooling = "concat",
                 local_radius: tuple[float, ...] | None = None, drop_path_rate: float = 0.1):
        """`spec`'s group sizes are the fine-tuning's (they size no weight: the reference fine-tunes with
        larger groups than it pretrains with); `local_radius` per scale, None or 0 = global attention."""
        super().__init__()
        if local_radius is not None and len(local_radius) != spec.scales:
            raise ValueError(f"local_radius {list(local_radius)} needs one entry per encoder scale ({spec.scales})")
        self.encoder = HierarchicalEncoder(spec, drop_path_rate)
        self.pooling, self.local_radius = pooling, local_radius
        self.head = classifier_head(2 * spec.out_channels if pooling == "concat" else spec.out_channels, num_classes)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """[B, N, 3] float32 clouds -> [B, K] logits."""
        tokens = self.encoder(self.encoder.group(points), local_radius=self.local_radius)[-1].tokens  # [B, G, C]
        mean, largest = tokens.mean(dim=1), tokens.max(dim=1).values
        return self.head(torch.cat([mean, largest], dim=1) if self.pooling == "concat" else mean + largest)


def smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Mean cross-entropy of [B, K] logits against [B] int64 labels whose one-hot targets keep 1 - smoothing on
    the true class and spread `smoothing` evenly over the K - 1 others (I2P-MAE's `smooth_loss`, ModelNet40:
    0.2); 0 is plain cross-entropy. torch's label_smoothing spreads over all K classes, hence the rescaling."""
    classes = logits.shape[1]
    if not 0 <= smoothing <= (classes - 1) / classes:
        raise ValueError(f"label smoothing {smoothing} must lie in [0, {(classes - 1) / classes:.3f}] for {classes} classes")
    return F.cross_entropy(logits, labels, label_smoothing=smoothing * classes / (classes - 1))


def load_pretrained_encoder(model: PointM2AEClassifier, directory: Path) -> None:
    """Copy the encoder a pretrain stage wrote into `directory` (encoder.pt + encoder.json) into `model.encoder`,
    strictly: a spec that differs in anything but the group sizes, or a missing, unexpected or misshapen tensor,
    is a ValueError naming the file."""
    stored = load_encoder_spec(directory)
    if replace(stored, group_sizes=model.encoder.spec.group_sizes) != model.encoder.spec:
        raise ValueError(f"{directory / 'encoder.json'}: pretrained encoder {json.dumps(asdict(stored))} is not the "
                         f"network being fine-tuned {json.dumps(asdict(model.encoder.spec))}")
    path = directory / ENCODER_WEIGHTS
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several unrelated types for a file that is not a checkpoint
        raise ValueError(f"pretrained encoder file {path} is not readable: {error}") from error
    load_fitting_weights(model.encoder, "the Point-M2AE encoder", state, path, source="pretrained encoder file")
