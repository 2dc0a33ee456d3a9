"""What a stored Point-M2AE encoder is, without torch: PointM2AESpec, saved next to its weights as
`encoder.json` (the network itself: point_m2ae.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ENCODER_WEIGHTS = "encoder.pt"
ENCODER_SPEC = "encoder.json"


@dataclass(frozen=True)
class PointM2AESpec:
    """Defaults: I2P-MAE's pretraining config (cfgs/pre-training/i2p-mae.yaml)."""

    num_groups: tuple[int, ...] = (512, 256, 64)
    group_sizes: tuple[int, ...] = (16, 8, 8)
    encoder_dims: tuple[int, ...] = (96, 192, 384)
    encoder_depths: tuple[int, ...] = (5, 5, 5)
    num_heads: int = 6
    token_embed_dims: tuple[int, int, int] = (128, 256, 512)  # scale-0 mini-PointNet's hidden widths

    def __post_init__(self) -> None:
        lengths = {len(self.num_groups), len(self.group_sizes), len(self.encoder_dims), len(self.encoder_depths)}
        if len(lengths) != 1:
            raise ValueError(f"num_groups, group_sizes, encoder_dims and encoder_depths need one entry per scale: {self}")
        if any(fine <= coarse for fine, coarse in zip(self.num_groups, self.num_groups[1:])):
            raise ValueError(f"num_groups must shrink from scale to scale, got {self.num_groups}")
        if any(size > below for size, below in zip(self.group_sizes[1:], self.num_groups)):
            raise ValueError(f"group_sizes {self.group_sizes} cannot exceed the token count of the scale below, "
                             f"num_groups {self.num_groups}")
        if any(dim % self.num_heads for dim in self.encoder_dims):
            raise ValueError(f"encoder_dims {self.encoder_dims} must be divisible by num_heads {self.num_heads}")

    @property
    def scales(self) -> int:
        return len(self.num_groups)

    @property
    def out_channels(self) -> int:
        return self.encoder_dims[-1]


def load_encoder_spec(directory: str | os.PathLike) -> PointM2AESpec:
    path = Path(directory) / ENCODER_SPEC
    if not path.is_file():
        raise FileNotFoundError(f"no Point-M2AE encoder spec at {path}")
    try:
        raw = json.loads(path.read_text())
        return PointM2AESpec(**{key: tuple(value) if isinstance(value, list) else value for key, value in raw.items()})
    except (json.JSONDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a Point-M2AE encoder spec: {error}") from error


def common_spec(pretrained: dict[str, Path]) -> PointM2AESpec:
    """The one encoder spec of all pretrained inputs: the random-init twin must match them to compare."""
    specs = {name: load_encoder_spec(path) for name, path in pretrained.items()}
    if len(set(specs.values())) != 1:
        listing = "; ".join(f"{name}: {spec}" for name, spec in specs.items())
        raise ValueError(f"the pretrained encoders differ in spec, so one random-init twin cannot match them: {listing}")
    return next(iter(specs.values()))
