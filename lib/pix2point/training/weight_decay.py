"""Which parameters weight decay falls on: I2P-MAE's and Point-M2AE's add_weight_decay (tools/builder.py)."""

from __future__ import annotations

from torch import nn


def decays(name: str, parameter: nn.Parameter) -> bool:
    """False for biases, norm weights (every 1-D tensor) and learned tokens (a name containing 'token'),
    which AdamW's decay would pull towards 0 for no regularising gain."""
    return parameter.ndim > 1 and not name.endswith(".bias") and "token" not in name


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer param groups of `model`'s trainable parameters: [{no decay}, {decay `weight_decay`}]."""
    trainable = [(name, parameter) for name, parameter in model.named_parameters() if parameter.requires_grad]
    return [
        {"params": [p for name, p in trainable if not decays(name, p)], "weight_decay": 0.0},
        {"params": [p for name, p in trainable if decays(name, p)], "weight_decay": weight_decay},
    ]
