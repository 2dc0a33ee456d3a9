"""Token masking for I2P-MAE (ZrrSkywalker/I2P-MAE, models/I2P_MAE.py): choose the visible tokens at the
coarsest scale, at random or guided by 2D saliency, then propagate visibility down to the finer scales.

Masks here are `visible` booleans (True = the encoder sees the token), one [B, G_l] tensor per level.
"""

from __future__ import annotations

import torch


def keep_count(tokens: int, mask_ratio: float) -> int:
    """Visible tokens per cloud; the original masks int(ratio * G) and keeps the rest."""
    return tokens - int(mask_ratio * tokens)


def random_visible(batch: int, tokens: int, mask_ratio: float, generator: torch.Generator) -> torch.Tensor:
    """[B, G]: a uniformly random `keep_count` tokens of each cloud are visible."""
    order = torch.rand(batch, tokens, generator=generator, device=generator.device).argsort(dim=1)
    return _first_drawn_visible(order, keep_count(tokens, mask_ratio))


def guided_visible(saliency: torch.Tensor, mask_ratio: float, generator: torch.Generator,
                   temperature: float = 1.0) -> torch.Tensor:
    """[B, G] saliency of each top-level token -> [B, G] visible.

    I2P-MAE's 2D-guided masking: draw all tokens without replacement with probabilities softmax(saliency),
    and keep the first `keep_count` drawn visible, so salient tokens tend to be seen and the masked ones
    (to be reconstructed) tend to be the less salient. `temperature` 1 is the paper's plain softmax.
    The draw runs on the generator's device (a CPU generator gives a GPU run the very masks of a CPU run:
    scripts/gpu_check.sh compares the two that way); the result is on the saliency's device.
    """
    probabilities = torch.softmax(saliency.float() / temperature, dim=1).to(generator.device)
    order = torch.multinomial(probabilities, saliency.shape[1], replacement=False, generator=generator)
    return _first_drawn_visible(order, keep_count(saliency.shape[1], mask_ratio)).to(saliency.device)


def _first_drawn_visible(order: torch.Tensor, keep: int) -> torch.Tensor:
    visible = torch.zeros(order.shape, dtype=torch.bool, device=order.device)
    visible.scatter_(1, order[:, :keep], True)
    return visible


def propagate_visible(top_visible: torch.Tensor, neighbours: list[torch.Tensor], sizes: list[int]) -> list[torch.Tensor]:
    """Visibility of every level, finest first, from the coarsest level's.

    A token of level l-1 is visible when it belongs to the group (`neighbours[l]`, [B, G_l, K_l] rows of
    level l-1) of some visible level-l token, and masked otherwise: a visible coarse token is built from
    visible fine tokens only, and a masked region stays masked at every scale. `sizes[l]` is G_l.
    """
    visible = [top_visible]
    for level in range(len(neighbours) - 1, 0, -1):
        group = neighbours[level]
        spread = visible[0][:, :, None].expand_as(group).flatten(1).to(torch.uint8)
        below = torch.zeros(group.shape[0], sizes[level - 1], dtype=torch.uint8, device=group.device)
        visible.insert(0, below.scatter_reduce(1, group.flatten(1), spread, reduce="amax").bool())
    return visible
