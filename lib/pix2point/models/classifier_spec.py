"""What an Image2Point object classifier is, without torch or MinkowskiEngine: the network, how its trunk is
inflated from 2D (inflation.py), how it pools, and which parts train (FIP, fip.py). The networks themselves
are in object_classifier.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

FipMode = Literal["io", "iobn", "all"]
FIP_MODES: tuple[str, ...] = get_args(FipMode)
Pooling = Literal["avg", "max"]
Axis = Literal["x", "y", "z"]
AXES: tuple[Axis, ...] = ("x", "y", "z")


@dataclass(frozen=True)
class InflationOptions:
    scale_by_depth: bool = False
    new_axis: Axis = "y"  # the axis the 2D kernel is copied along (the reference: y, ModelNet's up axis)
    row_axis: Axis = "z"  # the axis the kernel's rows run along (the reference: z); columns take the third

    def __post_init__(self) -> None:
        for name in ("new_axis", "row_axis"):
            if getattr(self, name) not in AXES:
                raise ValueError(f"{name} must be one of {', '.join(AXES)}, got {getattr(self, name)!r}")
        if self.row_axis == self.new_axis:
            raise ValueError(f"row_axis and new_axis must differ, both are {self.new_axis!r}")

    @property
    def column_axis(self) -> Axis:
        (column,) = (axis for axis in AXES if axis not in (self.new_axis, self.row_axis))
        return column


ClassifierNetwork = Literal["efficientnet_lite0", "resnet18", "resnet50"]
Init = Literal["scratch", "inflated"]


@dataclass(frozen=True)
class ClassifierSpec:
    network: ClassifierNetwork
    num_classes: int
    in_channels: int = 3  # xyz, as Image2Point's ModelNet40 setting
    pooling: Pooling = "avg"
    weights_path: Path | None = None  # 2D weights; the ResNets need one, EfficientNet-Lite0 has its packaged ones
    inflation: InflationOptions = InflationOptions()
    # None keeps the 2D network's. EfficientNet's 0.01 suits ImageNet's long schedules; over a few hundred
    # steps the running statistics of a training BatchNorm would lag so far behind that evaluation sees
    # stale ones (seen here: test accuracy at chance while the training loss fell).
    batchnorm_momentum: float | None = None
