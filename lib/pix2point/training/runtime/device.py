"""A training step's batch moved to the model's device, in one call per step.

Every stage builds its batch on the CPU (numpy augmentation, voxelisation, collation) and moves it with
`to_device` once, just before the forward pass; nothing inside the models creates tensors on another device.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import torch

T = TypeVar("T")


def to_device(value: T, device: torch.device) -> T:
    """`value` with every tensor in it on `device`: a tensor, or a dataclass, tuple, list or dict holding
    tensors (at any depth); anything else (ints, None, image sizes) comes back unchanged. Tensors already on
    `device` are not copied. Frozen dataclasses come back as new instances (dataclasses.replace)."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        moved = {field.name: to_device(getattr(value, field.name), device)
                 for field in dataclasses.fields(value) if field.init}
        return dataclasses.replace(value, **moved)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return type(value)(*(to_device(item, device) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(to_device(item, device) for item in value)
    if isinstance(value, dict):
        return {key: to_device(item, device) for key, item in value.items()}
    return value
