"""Frozen 2D teachers for I2P-MAE's depth views: normalised images -> feature maps and a saliency map.

Two kinds:

- the CNN teachers of pix2point.models.teachers (EfficientNet-Lite0 by default). A CNN has no CLS token,
  so its saliency is activation-based: the sum over channels of the squared activations at each cell
  (the spatial attention map of Zagoruyko & Komodakis, "Paying more attention to attention", 2017) of
  the teacher's last stride-32 stage (EfficientNet-Lite0 stage7, ResNet layer4), the CNN's counterpart
  of the last block that CLIP's CLS attention comes from. It is high where the network responds
  strongly, on the object and its parts, which is what I2P-MAE's 2D-guided masking needs. An early
  stage will not do: on the flat grey background of the depth views its bias response outweighs the
  object (measured on the synthetic objects: stage3's energy is higher on the background than on the
  object in 22 of 24 views; stage7's is higher on the object in 23 of 24).
- CLIP ViT-B/16 through `open_clip` (as the I2P-MAE paper), from a local weights file: features are the
  patch tokens after the final LayerNorm and projection (512 channels, 14 x 14 at 224 pixels), saliency
  the last block's CLS-to-patch attention averaged over heads.

Saliency maps are distributions over each image's cells, as CLIP's CLS attention is in the reference (its
probabilities over 197 tokens, about 1/197 each): the CNN's energy map is divided by its sum over the cells,
CLIP's attention is kept as it is. I2P-MAE's softmax over such small values is close to uniform; pretrain's
`saliency_distribution: min_max` rescales each view to [0, 1] first, for sharper guidance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pix2point.models.teacher_base import Teacher
from pix2point.models.teacher_layers import (  # noqa: F401 (re-exported: the light part of this module)
    CLIP_LAYER,
    SALIENCY_LAYER,
    TeacherLayer,
    ViewTeacherName,
    is_clip_teacher,
    view_teacher_layer,
)
from pix2point.models.teachers import build_teacher


@dataclass(frozen=True)
class SaliencyMethod:
    name: str
    description: str


ACTIVATION_SALIENCY = SaliencyMethod(
    "activation_energy",
    "sum over channels of the squared activations of the teacher's last stride-32 stage per cell "
    "(Zagoruyko & Komodakis 2017), divided by its sum over the view's cells",
)
CLS_ATTENTION = SaliencyMethod(
    "cls_attention", "last block's CLS-to-patch attention probabilities averaged over heads, as the reference",
)


class ViewTeacher(nn.Module):
    """Normalised [B, 3, H, W] images -> ([B, C, h, w] features, [B, h, w] saliency: non-negative, at most
    1 in sum over each image's cells).

    `mean`/`std` are the input normalisation its weights expect, for pixel values in [0, 1]."""

    name: str
    layer: TeacherLayer
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    saliency: SaliencyMethod

    def train(self, mode: bool = True) -> ViewTeacher:
        return super().train(False)


class CnnViewTeacher(ViewTeacher):
    """Features from `features` (a teacher cut at the feature layer); saliency from `deep`, the same
    network cut at its saliency layer, run on from the feature layer's output (one pass through the net)."""

    saliency = ACTIVATION_SALIENCY

    def __init__(self, features: Teacher, deep: Teacher, layer: TeacherLayer) -> None:
        super().__init__()
        self.features = features
        # A feature layer at or past the saliency layer gives the saliency itself: nothing runs on.
        self.rest = deep.trunk[len(features.trunk):]
        self.name, self.layer, self.mean, self.std = features.name, layer, features.mean, features.std
        self.eval()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(images)
        return features, sum_to_one_per_image(self.rest(features).square().sum(dim=1))


class ClipViewTeacher(ViewTeacher):
    saliency = CLS_ATTENTION

    def __init__(self, visual: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.visual = visual.requires_grad_(False)
        self.visual.output_tokens = True
        self.name, self.layer, self.mean, self.std = "clip_vit_b16", CLIP_LAYER, tuple(mean), tuple(std)
        self._attention: torch.Tensor | None = None
        last_attention = visual.transformer.resblocks[-1].attn
        # open_clip calls the block's nn.MultiheadAttention with need_weights=False; ask for the weights.
        last_attention.register_forward_pre_hook(ask_for_attention_weights, with_kwargs=True)
        last_attention.register_forward_hook(self._keep_weights)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, tokens = self.visual(images)  # [B, 196, 768] after the final LayerNorm
        batch, count, _ = tokens.shape
        side = int(round(count ** 0.5))
        features = (tokens @ self.visual.proj).transpose(1, 2).reshape(batch, -1, side, side)
        cls_to_patches = self._attention[:, 0, 1:].reshape(batch, side, side)
        return features, cls_to_patches

    def _keep_weights(self, module: nn.Module, args: Any, output: tuple[torch.Tensor, torch.Tensor]) -> None:
        self._attention = output[1]  # [B, L, L], averaged over heads


def ask_for_attention_weights(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    return args, {**kwargs, "need_weights": True, "average_attn_weights": True}


def sum_to_one_per_image(maps: torch.Tensor) -> torch.Tensor:
    """[B, h, w] non-negative maps -> each divided by its sum over the cells; an all-zero map becomes uniform."""
    flat = maps.flatten(1)
    total = flat.sum(dim=1, keepdim=True)
    uniform = torch.full_like(flat, 1 / flat.shape[1])
    return torch.where(total > 0, flat / total.clamp_min(torch.finfo(maps.dtype).tiny), uniform).view_as(maps)


def build_view_teacher(name: ViewTeacherName, layer: str | None = None, weights_path: Path | None = None) -> ViewTeacher:
    """The frozen view teacher `name` in eval mode (CLIP and the ResNets need `weights_path`)."""
    spec = view_teacher_layer(name, layer)
    if is_clip_teacher(name):
        if weights_path is None:
            raise ValueError(f"teacher {name} needs teacher_weights: a local open_clip ViT-B-16 checkpoint")
        return load_clip_teacher(Path(weights_path))
    features = build_teacher(name, spec.name, weights_path)
    return CnnViewTeacher(features, build_teacher(name, SALIENCY_LAYER[name], weights_path), spec)


def load_clip_teacher(weights_path: Path) -> ClipViewTeacher:
    try:
        import open_clip  # optional: it needs torchvision
    except ImportError as error:
        raise ImportError(
            "the clip_vit_b16 teacher needs open_clip: pip install open_clip_torch"
        ) from error
    if not weights_path.is_file():
        raise FileNotFoundError(f"CLIP weights file {weights_path} does not exist")
    model = open_clip.create_model("ViT-B-16", pretrained=str(weights_path))
    visual = model.visual
    mean = getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
    std = getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
    return ClipViewTeacher(visual, mean, std).eval()
