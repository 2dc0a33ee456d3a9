"""What every frozen 2D teacher is: a network cut at one layer, with the input normalisation it was trained with."""

from __future__ import annotations

import torch
from torch import nn

from pix2point.models.teacher_layers import TeacherLayer


class Teacher(nn.Module):
    """A frozen image network cut at one layer: normalised [B, 3, H, W] images -> [B, C, H / stride, W / stride].

    `mean` and `std` (per RGB channel, for pixel values in [0, 1]) are the normalisation its weights expect.
    """

    def __init__(self, name: str, layer: TeacherLayer, trunk: nn.Module,
                 mean: tuple[float, float, float], std: tuple[float, float, float]) -> None:
        super().__init__()
        self.name = name
        self.layer = layer.name
        self.stride = layer.stride
        self.channels = layer.channels
        self.mean = mean
        self.std = std
        self.trunk = trunk.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> Teacher:
        # Frozen includes the BatchNorm statistics: a parent model's .train() must not switch them to batch statistics.
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if height % self.stride or width % self.stride:
            raise ValueError(
                f"teacher {self.name} layer {self.layer} needs image sides that are multiples of its stride "
                f"{self.stride}; got {width}x{height}"
            )
        return self.trunk(images)
