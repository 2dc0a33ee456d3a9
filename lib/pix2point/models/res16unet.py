"""Res16UNet: the MinkowskiEngine sparse-conv UNet of SLidR / PointContrast (valeoai/SLidR model/res16unet.py).

A stem at full resolution, four encoder stages (kernel-2 stride-2 conv, then residual blocks) down to
stride 16, four decoder stages (kernel-2 stride-2 transposed conv, concatenation of the encoder output at
that stride, then residual blocks) back to stride 1. The backbone ends with the last decoder block: the
1x1 output layer lives in a separate head (heads.py), so pretrained backbone weights load into a model
with a fresh head.
"""

from __future__ import annotations

import MinkowskiEngine as ME
from torch import nn

from pix2point.models.backbone_spec import ENCODER_STAGES, UNetSize  # noqa: F401 (re-exported)

# SLidR's pretraining configs (config/ppkt_nuscenes.yaml, slidr_minkunet.yaml) use bn_momentum 0.05.
DEFAULT_BN_MOMENTUM = 0.05


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int, dimension: int) -> ME.MinkowskiConvolution:
    # No bias: every conv is followed by a BatchNorm, whose shift replaces it.
    return ME.MinkowskiConvolution(in_channels, out_channels, kernel_size=kernel_size, stride=stride, bias=False,
                                   dimension=dimension)


class BasicBlock(nn.Module):
    """Two 3x3x3 convs with a residual connection; a 1x1x1 conv + BN matches widths when they differ."""

    def __init__(self, in_channels: int, channels: int, bn_momentum: float, dimension: int) -> None:
        super().__init__()
        self.conv1 = _conv(in_channels, channels, 3, 1, dimension)
        self.norm1 = ME.MinkowskiBatchNorm(channels, momentum=bn_momentum)
        self.conv2 = _conv(channels, channels, 3, 1, dimension)
        self.norm2 = ME.MinkowskiBatchNorm(channels, momentum=bn_momentum)
        self.relu = ME.MinkowskiReLU(inplace=True)
        self.downsample = None
        if in_channels != channels:
            self.downsample = nn.Sequential(_conv(in_channels, channels, 1, 1, dimension),
                                            ME.MinkowskiBatchNorm(channels, momentum=bn_momentum))

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + residual)


def _blocks(in_channels: int, channels: int, count: int, bn_momentum: float, dimension: int) -> nn.Sequential:
    return nn.Sequential(*(BasicBlock(in_channels if index == 0 else channels, channels, bn_momentum, dimension)
                           for index in range(count)))


class EncoderStage(nn.Module):
    """Halve the resolution (kernel-2 stride-2 conv at constant width), then residual blocks."""

    def __init__(self, in_channels: int, channels: int, blocks: int, bn_momentum: float, dimension: int) -> None:
        super().__init__()
        self.down = _conv(in_channels, in_channels, 2, 2, dimension)
        self.down_norm = ME.MinkowskiBatchNorm(in_channels, momentum=bn_momentum)
        self.relu = ME.MinkowskiReLU(inplace=True)
        self.blocks = _blocks(in_channels, channels, blocks, bn_momentum, dimension)

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        return self.blocks(self.relu(self.down_norm(self.down(x))))


class DecoderStage(nn.Module):
    """Double the resolution (kernel-2 stride-2 transposed conv), concatenate the encoder skip, then blocks."""

    def __init__(self, in_channels: int, skip_channels: int, channels: int, blocks: int, bn_momentum: float,
                 dimension: int) -> None:
        super().__init__()
        self.up = ME.MinkowskiConvolutionTranspose(in_channels, channels, kernel_size=2, stride=2, bias=False,
                                                   dimension=dimension)
        self.up_norm = ME.MinkowskiBatchNorm(channels, momentum=bn_momentum)
        self.relu = ME.MinkowskiReLU(inplace=True)
        self.blocks = _blocks(channels + skip_channels, channels, blocks, bn_momentum, dimension)

    def forward(self, x: ME.SparseTensor, skip: ME.SparseTensor) -> ME.SparseTensor:
        # The transposed conv lands on the skip's coordinate map (same stride, already in the manager), so
        # the two line up row for row and ME.cat can join them.
        up = self.relu(self.up_norm(self.up(x)))
        return self.blocks(ME.cat(up, skip))


class Res16UNet(nn.Module):
    """Sparse UNet returning per-voxel features of `out_channels = size.planes[-1]` on the input's coordinates."""

    def __init__(self, in_channels: int, size: UNetSize, dimension: int = 3, stem_kernel_size: int = 3,
                 bn_momentum: float = DEFAULT_BN_MOMENTUM) -> None:
        super().__init__()
        self.size = size
        self.out_channels = size.planes[-1]
        self.stem = _conv(in_channels, size.init_dim, stem_kernel_size, 1, dimension)
        self.stem_norm = ME.MinkowskiBatchNorm(size.init_dim, momentum=bn_momentum)
        self.relu = ME.MinkowskiReLU(inplace=True)

        encoder_planes, decoder_planes = size.planes[:ENCODER_STAGES], size.planes[ENCODER_STAGES:]
        encoder_layers, decoder_layers = size.layers[:ENCODER_STAGES], size.layers[ENCODER_STAGES:]
        encoder_inputs = (size.init_dim, *encoder_planes[:-1])
        self.encoder = nn.ModuleList(
            EncoderStage(inputs, planes, layers, bn_momentum, dimension)
            for inputs, planes, layers in zip(encoder_inputs, encoder_planes, encoder_layers)
        )
        # Decoder stage i joins the encoder output one level shallower: stride 8, 4, 2, then the stem.
        skip_channels = (*encoder_planes[-2::-1], size.init_dim)
        decoder_inputs = (encoder_planes[-1], *decoder_planes[:-1])
        self.decoder = nn.ModuleList(
            DecoderStage(inputs, skip, planes, layers, bn_momentum, dimension)
            for inputs, skip, planes, layers in zip(decoder_inputs, skip_channels, decoder_planes, decoder_layers)
        )
        self._initialise_weights()

    def _initialise_weights(self) -> None:
        # He init for convs feeding ReLUs, as MinkowskiEngine's examples (SLidR leaves convs at ME's default);
        # identity BatchNorm, as SLidR's ResNetBase.weight_initialization, the only init SLidR does.
        for module in self.modules():
            if isinstance(module, (ME.MinkowskiConvolution, ME.MinkowskiConvolutionTranspose)):
                ME.utils.kaiming_normal_(module.kernel, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, ME.MinkowskiBatchNorm):
                nn.init.constant_(module.bn.weight, 1.0)
                nn.init.constant_(module.bn.bias, 0.0)

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        out = self.relu(self.stem_norm(self.stem(x)))
        skips = [out]
        for stage in self.encoder:
            out = stage(out)
            skips.append(out)
        skips.pop()  # the deepest output is the decoder's input, not a skip
        for stage in self.decoder:
            out = stage(out, skips.pop())
        return out
