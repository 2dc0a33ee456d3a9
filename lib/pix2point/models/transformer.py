"""Pre-norm transformer blocks over point tokens, as in Point-MAE / Point-M2AE (models/modules.py there):
positional embeddings are added before every block, padded tokens are excluded as attention keys, and each
residual branch can be dropped per sample (stochastic depth, the reference's `drop_path_rate`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"token width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """`valid`: [B, L] keys every query may attend to, or [B, L, L] per (query, key) pair (Point-M2AE's
        fine-tuning local attention); True = may be attended to."""
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        keys = None if valid is None else valid[:, None, None, :] if valid.dim() == 2 else valid[:, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016; timm's DropPath, used by Point-M2AE's and I2P-MAE's blocks): in
    training, each sample's residual branch [B, ...] is zeroed with probability `rate` and the kept ones are
    scaled by 1 / (1 - rate); in eval mode it is the identity."""

    def __init__(self, rate: float = 0.0):
        super().__init__()
        if not 0 <= rate < 1:
            raise ValueError(f"drop-path rate {rate} must lie in [0, 1)")
        self.rate = rate

    def forward(self, branch: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return branch
        keep = branch.new_empty((branch.shape[0],) + (1,) * (branch.dim() - 1)).bernoulli_(1 - self.rate)
        return branch * keep / (1 - self.rate)


def drop_path_rates(rate: float, depths: Sequence[int]) -> list[list[float]]:
    """Per stack, the drop-path rate of each block: linear from 0 to `rate` over all blocks of all stacks in
    order (Point-M2AE / I2P-MAE models: torch.linspace(0, drop_path_rate, sum(depths)))."""
    rates = torch.linspace(0, rate, sum(depths)).tolist()
    starts = [sum(depths[:i]) for i in range(len(depths))]
    return [rates[start:start + depth] for start, depth in zip(starts, depths)]


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path(self.attention(self.norm1(x), valid))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TransformerStack(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, drop_paths: Sequence[float] | None = None):
        super().__init__()
        drop_paths = [0.0] * depth if drop_paths is None else list(drop_paths)
        if len(drop_paths) != depth:
            raise ValueError(f"{len(drop_paths)} drop-path rates for {depth} blocks")
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, drop_path=rate) for rate in drop_paths)

    def forward(self, x: torch.Tensor, position: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x + position, valid)
        return x


def position_embedding(dim: int) -> nn.Module:
    """Token centre (x, y, z) -> a learned `dim`-wide embedding."""
    return nn.Sequential(nn.Linear(3, dim), nn.GELU(), nn.Linear(dim, dim))
