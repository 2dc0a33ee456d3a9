"""Point-M2AE's hierarchical point encoder (Zhang et al. 2022), the backbone I2P-MAE pretrains, and how it is
stored in artefacts:

    encoder.pt     state dict of HierarchicalEncoder
    encoder.json   PointM2AESpec: groups, group sizes, widths, depths, heads, first-level embedding widths

Scale l has G_l tokens (kNN groups around farthest-point-sampled centres, models.point_groups). Scale 0's
tokens embed their points with a mini-PointNet; a token of scale l > 0 merges the encoded tokens of its
group at scale l-1 with another; each scale runs a transformer over its visible tokens only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from pix2point.models.point_groups import PointHierarchy, gather, group_hierarchy, scatter_rows, visible_first
from pix2point.models.point_m2ae_spec import (  # noqa: F401 (re-exported: the light part of this module)
    ENCODER_SPEC,
    ENCODER_WEIGHTS,
    PointM2AESpec,
    load_encoder_spec,
)
from pix2point.models.transformer import TransformerStack, drop_path_rates, position_embedding


class TokenEmbed(nn.Module):
    """Mini-PointNet over a group: shared MLP, max-pool, the pooled vector beside each member, MLP, max-pool.
    Linear + BatchNorm1d over flattened rows is Point-M2AE's 1x1 Conv1d + BatchNorm1d over points."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int], out_channels: int):
        super().__init__()
        first, second, third = widths
        self.first = nn.Sequential(nn.Linear(in_channels, first), nn.BatchNorm1d(first), nn.ReLU(), nn.Linear(first, second))
        self.second = nn.Sequential(nn.Linear(2 * second, third), nn.BatchNorm1d(third), nn.ReLU(), nn.Linear(third, out_channels))

    def forward(self, groups: torch.Tensor) -> torch.Tensor:
        """[B, G, K, C_in] -> [B, G, C_out]."""
        batch, tokens, members, channels = groups.shape
        features = self.first(groups.reshape(-1, channels)).view(batch * tokens, members, -1)
        pooled = features.max(dim=1, keepdim=True).values.expand_as(features)
        features = torch.cat([pooled, features], dim=-1).reshape(batch * tokens * members, -1)
        return self.second(features).view(batch, tokens, members, -1).max(dim=2).values


class EncodedLevel(NamedTuple):
    tokens: torch.Tensor  # [B, L, C] the visible tokens of one scale, layer-normed, padded to the longest cloud
    valid: torch.Tensor  # [B, L] False for padding
    index: torch.Tensor  # [B, L] each row's token among the scale's G tokens


class HierarchicalEncoder(nn.Module):
    def __init__(self, spec: PointM2AESpec, drop_path_rate: float = 0.0):
        """`drop_path_rate`: stochastic depth of the last block, rising linearly from 0 over all blocks
        (a training setting: inactive in eval mode, so not part of the spec)."""
        super().__init__()
        self.spec = spec
        dims = spec.encoder_dims
        self.token_embeds = nn.ModuleList(
            [TokenEmbed(3, spec.token_embed_dims, dims[0])]
            + [TokenEmbed(dims[i - 1], (dims[i - 1], dims[i - 1], dims[i]), dims[i]) for i in range(1, spec.scales)]
        )
        self.position_embeds = nn.ModuleList(position_embedding(dim) for dim in dims)
        self.stacks = nn.ModuleList(
            TransformerStack(dim, depth, spec.num_heads, rates)
            for dim, depth, rates in zip(dims, spec.encoder_depths, drop_path_rates(drop_path_rate, spec.encoder_depths))
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for dim in dims)
        self.apply(init_weights)

    def group(self, points: torch.Tensor) -> PointHierarchy:
        return group_hierarchy(points, self.spec.num_groups, self.spec.group_sizes)

    def forward(self, hierarchy: PointHierarchy, visible: list[torch.Tensor] | None = None,
                local_radius: tuple[float, ...] | None = None) -> list[EncodedLevel]:
        """Encode every scale, finest first; `visible` (per scale [B, G_l], see training.masking) hides the
        masked tokens from the transformers; None encodes all tokens. `local_radius` (per scale, in the cloud's
        units; 0 = global): a token attends only to tokens whose centres lie closer than the radius, as
        Point-M2AE's and I2P-MAE's fine-tuning encoders (H_Encoder.local_att_mask); pretraining attends globally."""
        if local_radius is not None and len(local_radius) != self.spec.scales:
            raise ValueError(f"local_radius {list(local_radius)} needs one entry per scale ({self.spec.scales})")
        levels: list[EncodedLevel] = []
        below = None
        for scale in range(self.spec.scales):
            if scale == 0:
                tokens = self.token_embeds[0](hierarchy.members(0))
            else:
                tokens = self.token_embeds[scale](gather(below, hierarchy.neighbours[scale]))
            seen = visible[scale] if visible is not None else torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
            index, valid = visible_first(seen)
            position = self.position_embeds[scale](gather(hierarchy.centres[scale], index))
            attend = None if visible is None else valid
            if local_radius is not None and local_radius[scale] > 0:
                centres = gather(hierarchy.centres[scale], index)
                near = torch.cdist(centres, centres) < local_radius[scale]  # [B, L, L]
                attend = near if attend is None else near & attend[:, None, :]
            encoded = self.stacks[scale](gather(tokens, index), position, attend)
            levels.append(EncodedLevel(self.norms[scale](encoded), valid, index))
            # The next scale merges encoded tokens; a visible coarse token's group is all visible (masking
            # propagates that way), so masked rows' unencoded values only reach tokens that are dropped.
            below = scatter_rows(tokens, index, encoded, valid)
        return levels

    def pooled(self, points: torch.Tensor) -> torch.Tensor:
        """[B, N, 3] -> [B, C]: the coarsest scale's tokens, max-pooled (I2P-MAE's linear-SVM feature)."""
        return self(self.group(points))[-1].tokens.max(dim=1).values


def init_weights(module: nn.Module) -> None:
    """Point-M2AE's initialisation: truncated-normal linear weights (std 0.02), zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def save_encoder(directory: Path, encoder: HierarchicalEncoder) -> None:
    torch.save(encoder.state_dict(), directory / ENCODER_WEIGHTS)
    (directory / ENCODER_SPEC).write_text(json.dumps(asdict(encoder.spec), indent=2))


def load_encoder(directory: str | os.PathLike) -> HierarchicalEncoder:
    """The Point-M2AE encoder of a pretrain artefact's folder (encoder.pt, encoder.json)."""
    directory = Path(directory)
    encoder = HierarchicalEncoder(load_encoder_spec(directory))
    encoder.load_state_dict(torch.load(directory / ENCODER_WEIGHTS, map_location="cpu", weights_only=True))
    return encoder


@torch.inference_mode()
def embed_objects(encoder: HierarchicalEncoder, points: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """[M, N, 3] object point clouds -> [M, C] float32 max-pooled features of the frozen encoder."""
    encoder.eval()
    chunks = [encoder.pooled(torch.tensor(points[start:start + batch_size], dtype=torch.float32))
              for start in range(0, len(points), batch_size)]
    return torch.cat(chunks).numpy()
