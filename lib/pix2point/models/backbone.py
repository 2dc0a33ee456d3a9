"""A 3D backbone as stored in artefacts: its weights plus the spec needed to rebuild it and feed it points.

    backbone.pt     state dict of the Res16UNet (no head)
    backbone.json   BackboneSpec: size, input features, voxel size
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2point.models.backbone_spec import (  # noqa: F401 (re-exported: the light part of this module)
    BACKBONE_SPEC,
    BACKBONE_WEIGHTS,
    BackboneSpec,
    InputFeatures,
    load_backbone_spec,
    unet_size,
)
from pix2point.models.checkpoints import load_fitting_weights
from pix2point.models.res16unet import Res16UNet
from pix2point.models.voxelize import collate_sparse, voxelize


def build_backbone(spec: BackboneSpec) -> Res16UNet:
    return Res16UNet(spec.in_channels, unet_size(spec.size))


def point_input_features(rgb: np.ndarray, kind: InputFeatures) -> torch.Tensor:
    """[N, 3] uint8 colours -> [N, C] float32 network input (colours centred on 0, as in PointContrast)."""
    if kind == "rgb":
        return torch.from_numpy(rgb.astype(np.float32) / 255.0 - 0.5)
    return torch.ones(len(rgb), 1)


def save_backbone(directory: Path, model: Res16UNet, spec: BackboneSpec) -> None:
    torch.save(model.state_dict(), directory / BACKBONE_WEIGHTS)
    (directory / BACKBONE_SPEC).write_text(json.dumps(asdict(spec), indent=2))


def load_backbone(directory: str | os.PathLike) -> tuple[Res16UNet, BackboneSpec]:
    """The Res16UNet and its spec from a pretrain artefact's folder (backbone.pt, backbone.json)."""
    directory = Path(directory)
    spec = load_backbone_spec(directory)
    model = build_backbone(spec)
    model.load_state_dict(torch.load(directory / BACKBONE_WEIGHTS, map_location="cpu", weights_only=True))
    return model, spec


def load_pretrained(backbone: nn.Module, weights: Path) -> int:
    """Copy a pretrained state dict of the same backbone spec; returns how many tensors it holds. A tensor
    missing, unexpected or of another shape is a ValueError naming the file and the tensors (a partial load
    would silently finetune a half-random network)."""
    pretrained = torch.load(weights, map_location="cpu", weights_only=True)
    load_fitting_weights(backbone, "the finetuned backbone", pretrained, weights, source="pretrained backbone file")
    return len(pretrained)


@torch.inference_mode()
def embed_points(model: Res16UNet, spec: BackboneSpec, xyz: np.ndarray, rgb: np.ndarray) -> torch.Tensor:
    """Per-point backbone features [N, C] of one point cloud (each point takes its voxel's feature)."""
    model.eval()
    voxels = voxelize(torch.from_numpy(np.ascontiguousarray(xyz, np.float32)), spec.voxel_size)
    batch = collate_sparse([(voxels, voxels.voxel_features(point_input_features(rgb, spec.input_features)))])
    tensor = batch.sparse_tensor()
    output = model(tensor)
    rows = batch.feature_rows(tensor, torch.zeros(len(xyz), dtype=torch.long), torch.arange(len(xyz)))
    return output.F[rows]
