"""The frozen 2D teachers: one Literal of names, one function that builds each."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pix2point.models.efficientnet_lite import (
    EFFICIENTNET_LITE0_LAYERS,
    EFFICIENTNET_LITE0_MEAN,
    EFFICIENTNET_LITE0_STD,
    efficientnet_lite0_trunk,
    load_efficientnet_lite0,
)
from pix2point.models.resnet import IMAGENET_MEAN, IMAGENET_STD, load_resnet_backbone, resnet_layers
from pix2point.models.teacher_base import Teacher, TeacherLayer

TeacherName = Literal["efficientnet_lite0", "resnet18", "resnet50"]
TEACHER_NAMES: tuple[str, ...] = get_args(TeacherName)

__all__ = ["TEACHER_NAMES", "Teacher", "TeacherLayer", "TeacherName", "build_teacher", "default_layer",
           "teacher_layer", "teacher_layers"]


def teacher_layers(name: TeacherName) -> dict[str, TeacherLayer]:
    """The layers `name` can be cut at (known without loading any weights)."""
    if name == "efficientnet_lite0":
        return EFFICIENTNET_LITE0_LAYERS
    if name in ("resnet18", "resnet50"):
        return resnet_layers(name)
    raise ValueError(f"unknown teacher {name!r}; known: {', '.join(TEACHER_NAMES)}")


def default_layer(name: TeacherName) -> str:
    # EfficientNet's stride-16 stage divides the default 320x240 input; layer4 is the layer PPKT distils.
    return "stage5" if name == "efficientnet_lite0" else "layer4"


def teacher_layer(name: TeacherName, layer: str | None) -> TeacherLayer:
    """The layer `layer` of teacher `name` (its default layer for None); an unknown layer is a ValueError naming the known ones."""
    layers = teacher_layers(name)
    chosen = default_layer(name) if layer is None else layer
    if chosen not in layers:
        known = ", ".join(spec.describe() for spec in layers.values())
        raise ValueError(f"teacher {name} has no layer {chosen!r}; its layers: {known}")
    return layers[chosen]


def build_teacher(name: TeacherName, layer: str | None = None, weights_path: Path | None = None) -> Teacher:
    """The frozen teacher `name` cut at `layer`, in eval mode.

    EfficientNet-Lite0 loads its packaged ImageNet weights unless `weights_path` is given. ResNets need
    `weights_path`: a torchvision state dict or a MoCo v2 checkpoint.
    """
    spec = teacher_layer(name, layer)
    if name == "efficientnet_lite0":
        trunk = efficientnet_lite0_trunk(load_efficientnet_lite0(weights_path), spec.name)
        return Teacher(name, spec, trunk, EFFICIENTNET_LITE0_MEAN, EFFICIENTNET_LITE0_STD)
    if weights_path is None:
        raise ValueError(
            f"teacher {name} needs a weights file (teacher_weights): a torchvision state dict or a MoCo v2 "
            "checkpoint, since ResNet weights cannot be downloaded here"
        )
    trunk = load_resnet_backbone(name, Path(weights_path)).trunk(spec.name)
    return Teacher(name, spec, trunk, IMAGENET_MEAN, IMAGENET_STD)
