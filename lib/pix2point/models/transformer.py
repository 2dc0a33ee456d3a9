"""Pre-norm transformer blocks over point tokens, as in Point-MAE / Point-M2AE (models/modules.py there):
positional embeddings are added before every block, and padded tokens are excluded as attention keys."""

from __future__ import annotations

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
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        keys = None if valid is None else valid[:, None, None, :]  # True = may be attended to
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), valid)
        return x + self.mlp(self.norm2(x))


class TransformerStack(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int):
        super().__init__()
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads) for _ in range(depth))

    def forward(self, x: torch.Tensor, position: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x + position, valid)
        return x


def position_embedding(dim: int) -> nn.Module:
    """Token centre (x, y, z) -> a learned `dim`-wide embedding."""
    return nn.Sequential(nn.Linear(3, dim), nn.GELU(), nn.Linear(dim, dim))
