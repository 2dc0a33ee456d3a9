"""What a stored 3D backbone is, without torch or MinkowskiEngine: the Res16UNet sizes and the BackboneSpec
saved next to its weights as `backbone.json` (the network itself: res16unet.py, backbone.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ENCODER_STAGES = 4
# How points map to voxel coordinates: floor(xyz / v) (MinkowskiEngine's sparse_quantize, SLidR) or
# round(xyz / v) (Image2Point); see models/voxelize.py.
Rounding = Literal["floor", "round"]


@dataclass(frozen=True)
class UNetSize:
    """Widths and block counts: planes/layers[0:4] are the encoder stages, [4:8] the decoder stages."""

    planes: tuple[int, ...]
    layers: tuple[int, ...]
    init_dim: int = 32

    def __post_init__(self) -> None:
        stages = 2 * ENCODER_STAGES
        if len(self.planes) != stages or len(self.layers) != stages:
            raise ValueError(f"UNetSize needs {stages} planes and {stages} layers, got {self.planes}, {self.layers}")
        if min(self.planes) < 1 or min(self.layers) < 1 or self.init_dim < 1:
            raise ValueError(f"UNetSize widths and block counts must be positive: {self}")

    @classmethod
    def res16unet34c(cls) -> UNetSize:
        return cls(planes=(32, 64, 128, 256, 256, 128, 96, 96), layers=(2, 3, 4, 6, 2, 2, 2, 2))

    @classmethod
    def res16unet14a(cls) -> UNetSize:
        return cls(planes=(32, 64, 128, 256, 128, 128, 96, 96), layers=(1, 1, 1, 1, 1, 1, 1, 1))

    @classmethod
    def tiny(cls) -> UNetSize:
        """For smoke tests and CI: the full topology at a fraction of the cost."""
        return cls(planes=(16, 32, 32, 64, 32, 32, 16, 16), layers=(1, 1, 1, 1, 1, 1, 1, 1), init_dim=16)


UNetSizeName = Literal["Res16UNet34C", "Res16UNet14A", "tiny"]


def unet_size(name: UNetSizeName) -> UNetSize:
    if name == "Res16UNet34C":
        return UNetSize.res16unet34c()
    if name == "Res16UNet14A":
        return UNetSize.res16unet14a()
    if name == "tiny":
        return UNetSize.tiny()
    raise ValueError(f"unknown UNet size {name!r}; known: Res16UNet34C, Res16UNet14A, tiny")


BACKBONE_WEIGHTS = "backbone.pt"
BACKBONE_SPEC = "backbone.json"

InputFeatures = Literal["rgb", "ones"]


@dataclass(frozen=True)
class BackboneSpec:
    size: UNetSizeName
    input_features: InputFeatures
    voxel_size: float  # metres

    @property
    def in_channels(self) -> int:
        return 3 if self.input_features == "rgb" else 1


def load_backbone_spec(directory: str | os.PathLike) -> BackboneSpec:
    spec_path = Path(directory) / BACKBONE_SPEC
    if not spec_path.is_file():
        raise FileNotFoundError(f"no backbone spec at {spec_path}")
    return BackboneSpec(**json.loads(spec_path.read_text()))
