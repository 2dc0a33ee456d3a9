"""ResNet-18/50 laid out exactly like torchvision's (same module names, so the same state-dict keys), which
cannot be installed here; weights come from a user's file (see checkpoints.py).

Layers: layer2 (stride 8), layer3 (stride 16), layer4 (stride 32); channels 128/256/512 for ResNet-18 and
512/1024/2048 for ResNet-50.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pix2point.models.checkpoints import load_fitting_weights, read_state_dict
from pix2point.models.teacher_layers import RESNET_STAGE_NAMES as _STAGE_NAMES
from pix2point.models.teacher_layers import RESNET_STAGE_WIDTHS as _STAGE_WIDTHS
from pix2point.models.teacher_layers import ResNetName  # noqa: F401 (re-exported)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)



class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, width * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class Bottleneck(nn.Module):
    """torchvision's "ResNet v1.5" bottleneck: the stride sits on the 3x3 conv."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, width * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()  # no parameters, so no keys: matches torchvision's `downsample = None`
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock | Bottleneck], depths: tuple[int, int, int, int],
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        in_channels = 64
        for index, (name, width, depth) in enumerate(zip(_STAGE_NAMES, _STAGE_WIDTHS, depths)):
            first_stride = 1 if index == 0 else 2
            blocks = []
            for block_index in range(depth):
                blocks.append(block(in_channels, width, first_stride if block_index == 0 else 1))
                in_channels = width * block.expansion
            self.add_module(name, nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)

    def trunk(self, last_layer: str) -> nn.Sequential:
        """The stem and the stages up to `last_layer` (its modules, not copies): nothing after it runs."""
        stages = _STAGE_NAMES[: _STAGE_NAMES.index(last_layer) + 1]
        return nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool, *(getattr(self, name) for name in stages))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.trunk("layer4")(images)), 1))


def resnet(name: ResNetName) -> ResNet:
    """The architecture only (random weights)."""
    if name == "resnet18":
        return ResNet(BasicBlock, (2, 2, 2, 2))
    if name == "resnet50":
        return ResNet(Bottleneck, (3, 4, 6, 3))
    raise ValueError(f"unknown ResNet {name!r}; known: resnet18, resnet50")


def load_resnet_backbone(name: ResNetName, weights_path: Path) -> ResNet:
    """A ResNet whose backbone (everything but fc) comes from `weights_path`; the file's fc or MoCo head is ignored."""
    model = resnet(name)
    load_fitting_weights(model, name, read_state_dict(weights_path), weights_path, ignored_prefixes=("fc.",))
    return model.eval()
