"""Point-M2AE's hierarchical decoder: from the coarsest scale down, masked tokens enter as a learned mask
token, a transformer mixes them with the visible ones, and feature propagation carries the result to the
next finer scale beside that scale's encoder output (ZrrSkywalker/I2P-MAE, models/I2P_MAE.py)."""

from __future__ import annotations

import torch
from torch import nn

from pix2point.models.point_groups import PointHierarchy, gather, knn, scatter_rows
from pix2point.models.point_m2ae import EncodedLevel
from pix2point.models.transformer import TransformerStack, drop_path_rates, position_embedding


class ResidualMLP(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(channels, channels), nn.BatchNorm1d(channels), nn.GELU(),
                                  nn.Linear(channels, channels), nn.BatchNorm1d(channels))
        self.activation = nn.GELU()

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(rows) + rows)


class FeaturePropagation(nn.Module):
    """PointNet++ feature propagation: coarse tokens interpolated at the fine centres (inverse squared
    distance over the 3 nearest coarse centres), concatenated with the fine tokens, fused by MLPs."""

    def __init__(self, fine_channels: int, coarse_channels: int, blocks: int = 1):
        super().__init__()
        self.fuse = nn.Sequential(nn.Linear(fine_channels + coarse_channels, fine_channels),
                                  nn.BatchNorm1d(fine_channels), nn.GELU())
        self.blocks = nn.Sequential(*(ResidualMLP(fine_channels) for _ in range(blocks)))

    def forward(self, fine_centres: torch.Tensor, coarse_centres: torch.Tensor, fine_tokens: torch.Tensor,
                coarse_tokens: torch.Tensor) -> torch.Tensor:
        squared, index = knn(fine_centres, coarse_centres, min(3, coarse_centres.shape[1]))
        weight = 1.0 / (squared + 1e-8)
        weight = weight / weight.sum(-1, keepdim=True)
        interpolated = (gather(coarse_tokens, index) * weight[..., None]).sum(2)
        rows = torch.cat([fine_tokens, interpolated], dim=-1).flatten(0, 1)
        return self.blocks(self.fuse(rows)).view(*fine_tokens.shape[:2], -1)


class HierarchicalDecoder(nn.Module):
    """Decodes the coarsest len(depths) scales; its widths are the encoder's at those scales, coarsest first.
    The output is the tokens of scale `encoder scales - len(depths)`, where I2P-MAE reconstructs."""

    def __init__(self, encoder_dims: tuple[int, ...], depths: tuple[int, ...], heads: int, up_blocks: int = 1,
                 drop_path_rate: float = 0.0):
        super().__init__()
        if not 0 < len(depths) <= len(encoder_dims):
            raise ValueError(f"decoder depths {depths} need 1 to {len(encoder_dims)} scales")
        self.dims = tuple(reversed(encoder_dims))[: len(depths)]
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.dims[0]))
        self.stacks = nn.ModuleList(TransformerStack(dim, depth, heads, rates) for dim, depth, rates
                                    in zip(self.dims, depths, drop_path_rates(drop_path_rate, depths)))
        self.position_embeds = nn.ModuleList(position_embedding(dim) for dim in self.dims)
        self.propagations = nn.ModuleList(FeaturePropagation(self.dims[i], self.dims[i - 1], up_blocks)
                                          for i in range(1, len(self.dims)))
        self.norm = nn.LayerNorm(self.dims[-1])
        for module in self.stacks.modules():  # the original's decoder blocks: Xavier-uniform linear weights
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, hierarchy: PointHierarchy, levels: list[EncodedLevel]) -> torch.Tensor:
        """-> [B, G_r, C] every token (visible and masked) of the output scale r, layer-normed."""
        coarsest = len(levels) - 1
        x = None
        for step in range(len(self.dims)):
            scale = coarsest - step
            level, centres = levels[scale], hierarchy.centres[scale]
            if step == 0:
                full = self.mask_token.expand(centres.shape[0], centres.shape[1], -1)
                x = scatter_rows(full, level.index, level.tokens, level.valid)
            else:
                empty = level.tokens.new_zeros(centres.shape[0], centres.shape[1], level.tokens.shape[-1])
                encoded = scatter_rows(empty, level.index, level.tokens, level.valid)  # masked tokens: zeros
                x = self.propagations[step - 1](centres, hierarchy.centres[scale + 1], encoded, x)
            x = self.stacks[step](x, self.position_embeds[step](centres))
        return self.norm(x)
