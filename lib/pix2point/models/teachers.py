"""The frozen 2D teachers: one Literal of names, one function that builds each."""

from __future__ import annotations

from pathlib import Path

from pix2point.models.efficientnet_lite import (
    EFFICIENTNET_LITE0_MEAN,
    EFFICIENTNET_LITE0_STD,
    efficientnet_lite0_trunk,
    load_efficientnet_lite0,
)
from pix2point.models.resnet import IMAGENET_MEAN, IMAGENET_STD, load_resnet_backbone
from pix2point.models.teacher_base import Teacher
from pix2point.models.teacher_layers import (
    TEACHER_NAMES,
    TeacherLayer,
    TeacherName,
    default_layer,
    teacher_layer,
    teacher_layers,
)

__all__ = ["TEACHER_NAMES", "Teacher", "TeacherLayer", "TeacherName", "build_teacher", "default_layer",
           "teacher_layer", "teacher_layers"]


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
