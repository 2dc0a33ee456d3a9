"""MinkowskiEngine twins of the project's ResNet-18/50 (models/resnet.py), filled by inflation, laid out as
Image2Point's SPVCNN{18,50}_cls:

    stem        new: 3x3x3 conv (point features -> 64) and BN (no ReLU, as Image2Point's) at stride 1, no max-pool, since
                objects at voxel 0.05 are only ~40 voxels across (the 2D stem divides images by 4)
    trunk       inflated: layer1..layer4 with the 2D strides (1, 2, 2, 2); 3x3 -> 3x3x3, 1x1 -> 1x1x1, and the
                1x1 stride-2 shortcut -> 2x2x2 stride 2 with the 1x1 weight in every cell
    pooling     global average or max per object
    classifier  new: dropout, a linear layer and BatchNorm1d over the logits (as Image2Point's)
"""

from __future__ import annotations

from pathlib import Path

import MinkowskiEngine as ME
from torch import nn

from pix2point.models.inflated_efficientnet import Pooling, SparseObjectClassifier
from pix2point.models.inflation import InflationOptions, InflationReport, ModulePair, inflate_modules
from pix2point.models.resnet import BasicBlock, Bottleneck, ResNet, ResNetName, load_resnet_backbone

REPLACED_2D_PREFIXES = ("conv1.", "bn1.", "fc.")
_STAGES = ("layer1", "layer2", "layer3", "layer4")
# The conv/BN attributes a 2D block and its twin share, in forward order.
_BLOCK_LAYERS = ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3")


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> ME.MinkowskiConvolution:
    return ME.MinkowskiConvolution(in_channels, out_channels, kernel_size=kernel_size, stride=stride, bias=False,
                                   dimension=3)


def _norm(like: nn.BatchNorm2d) -> ME.MinkowskiBatchNorm:
    return ME.MinkowskiBatchNorm(like.num_features, eps=like.eps, momentum=like.momentum)


def _shortcut(block2d: BasicBlock | Bottleneck) -> nn.Module | None:
    """The twin of a 2D shortcut: none for identity; a strided 1x1 conv becomes an s-cell stride-s conv."""
    if isinstance(block2d.downsample, nn.Identity):
        return None
    conv2d, norm2d = block2d.downsample
    stride = conv2d.stride[0]
    kernel_size = stride if stride > 1 else 1
    return nn.Sequential(_conv(conv2d.in_channels, conv2d.out_channels, kernel_size, stride), _norm(norm2d))


class SparseResidualBlock(nn.Module):
    """The twin of a BasicBlock or Bottleneck: its convs with the same kernels and strides, ReLU after each
    BN but the last, then the shortcut is added and a ReLU applied."""

    def __init__(self, block2d: BasicBlock | Bottleneck) -> None:
        super().__init__()
        self.layer_names = tuple(name for name in _BLOCK_LAYERS if hasattr(block2d, name))
        for name in self.layer_names:
            layer2d = getattr(block2d, name)
            if isinstance(layer2d, nn.Conv2d):
                self.add_module(name, _conv(layer2d.in_channels, layer2d.out_channels, layer2d.kernel_size[0],
                                            layer2d.stride[0]))
            else:
                self.add_module(name, _norm(layer2d))
        self.downsample = _shortcut(block2d)
        self.relu = ME.MinkowskiReLU(inplace=True)

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        out = x
        last = self.layer_names[-1]
        for name in self.layer_names:
            out = getattr(self, name)(out)
            if name.startswith("bn") and name != last:
                out = self.relu(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class SparseResNet(SparseObjectClassifier):
    def __init__(self, model2d: ResNet, in_channels: int, num_classes: int, pooling: Pooling = "avg",
                 dropout: float = 0.2) -> None:
        stem_width = model2d.conv1.out_channels
        stem = nn.Sequential(_conv(in_channels, stem_width, 3), _norm(model2d.bn1))  # Image2Point: conv + BN only
        trunk = nn.Sequential(*(nn.Sequential(*(SparseResidualBlock(block) for block in getattr(model2d, stage)))
                                for stage in _STAGES))
        super().__init__(stem, trunk, model2d.fc.in_features, num_classes, pooling, dropout)


def resnet_module_pairs(model2d: ResNet, model3d: SparseResNet) -> list[ModulePair]:
    """Each 2D conv and BatchNorm of layer1..layer4 beside the 3D layer it inflates into."""
    pairs: list[ModulePair] = []
    blocks2d = [block for stage in _STAGES for block in getattr(model2d, stage)]
    blocks3d = [block for stage in model3d.trunk for block in stage]
    for block2d, block3d in zip(blocks2d, blocks3d, strict=True):
        pairs += [(getattr(block2d, name), getattr(block3d, name)) for name in block3d.layer_names]
        if block3d.downsample is not None:
            pairs += list(zip(block2d.downsample, block3d.downsample, strict=True))
    return pairs


def inflate_resnet(model2d: ResNet, model3d: SparseResNet,
                   options: InflationOptions = InflationOptions()) -> InflationReport:
    """Fill `model3d`'s trunk from `model2d`; the report lists every 2D tensor used and those replaced."""
    return inflate_modules(model2d, model3d, resnet_module_pairs(model2d, model3d), REPLACED_2D_PREFIXES,
                           model3d.trunk, options)


def inflated_resnet(name: ResNetName, weights_path: Path, in_channels: int, num_classes: int,
                    options: InflationOptions = InflationOptions(), pooling: Pooling = "avg",
                    ) -> tuple[SparseResNet, InflationReport]:
    """The twin of ResNet `name` inflated from the weights in `weights_path` (torchvision or MoCo v2 file)."""
    model2d = load_resnet_backbone(name, Path(weights_path))
    model3d = SparseResNet(model2d, in_channels, num_classes, pooling)
    return model3d, inflate_resnet(model2d, model3d, options)
