"""The layers each frozen 2D teacher can be cut at, known without torch or any weights.

Params models validate a teacher and layer with these (pipeline.yaml is checked before anything heavy is
imported); the networks themselves are in efficientnet_lite.py, resnet.py, teachers.py and view_teachers.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

TeacherName = Literal["efficientnet_lite0", "resnet18", "resnet50"]
TEACHER_NAMES: tuple[str, ...] = get_args(TeacherName)
ResNetName = Literal["resnet18", "resnet50"]
ClipName = Literal["clip_vit_b16"]
ViewTeacherName = Literal[TeacherName, ClipName]


@dataclass(frozen=True)
class TeacherLayer:
    """A layer a teacher can be cut at: its output has `channels` channels, one cell per `stride` input pixels."""

    name: str
    stride: int
    channels: int

    def describe(self) -> str:
        return f"{self.name} (stride {self.stride}, {self.channels} channels)"


EFFICIENTNET_LITE0_LAYERS = {
    layer.name: layer
    for layer in (
        TeacherLayer("stage3", stride=8, channels=40),
        TeacherLayer("stage5", stride=16, channels=112),
        TeacherLayer("stage7", stride=32, channels=320),
        TeacherLayer("head", stride=32, channels=1280),
    )
}
RESNET_STAGE_WIDTHS = (64, 128, 256, 512)
RESNET_STAGE_NAMES = ("layer1", "layer2", "layer3", "layer4")

CLIP_LAYER = TeacherLayer("patch_tokens", stride=16, channels=512)
CLIP_IMAGE_SIZE = 224  # ViT-B/16's position embeddings are a 14 x 14 grid of 16-pixel patches
# The CNN layer views2d cuts at unless told: stride 8 keeps the maps detailed at 224 pixels (28 x 28, finer
# than CLIP's 14 x 14) and 40 channels keep the per-point artefact small (3 views x N points x C).
DEFAULT_CNN_LAYER = {"efficientnet_lite0": "stage3"}
SALIENCY_LAYER = {"efficientnet_lite0": "stage7", "resnet18": "layer4", "resnet50": "layer4"}


def resnet_layers(name: ResNetName) -> dict[str, TeacherLayer]:
    expansion = 1 if name == "resnet18" else 4
    return {
        stage: TeacherLayer(stage, stride=stride, channels=width * expansion)
        for stage, stride, width in zip(RESNET_STAGE_NAMES[1:], (8, 16, 32), RESNET_STAGE_WIDTHS[1:])
    }


def teacher_layers(name: TeacherName) -> dict[str, TeacherLayer]:
    """The layers `name` can be cut at."""
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


def is_clip_teacher(name: str) -> bool:
    return name in get_args(ClipName)


def view_teacher_layer(name: ViewTeacherName, layer: str | None) -> TeacherLayer:
    """The layer views2d reads from `name`; an unknown layer is a ValueError."""
    if is_clip_teacher(name):
        if layer not in (None, CLIP_LAYER.name):
            raise ValueError(f"teacher {name} has one layer, {CLIP_LAYER.describe()}; got {layer!r}")
        return CLIP_LAYER
    return teacher_layer(name, DEFAULT_CNN_LAYER.get(name) if layer is None else layer)


def saliency_stride(name: ViewTeacherName, layer: str | None) -> int:
    """The stride of the map the saliency of `name` comes from (image sides must be multiples of it)."""
    if is_clip_teacher(name):
        return CLIP_LAYER.stride
    return max(view_teacher_layer(name, layer).stride, teacher_layer(name, SALIENCY_LAYER[name]).stride)
