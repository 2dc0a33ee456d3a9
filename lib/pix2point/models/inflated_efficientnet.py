"""A MinkowskiEngine twin of EfficientNet-Lite, built from a 2D model's block layout and filled by inflation.

    stem        new: 3x3x3 conv (point features -> the 2D stem's width) and BN, no activation (Image2Point's
                SPVCNN_cls stem: Conv3d + BatchNorm)
    trunk       inflated: the 2D model's MBConv blocks (1x1x1 expand, channelwise k x k x k, 1x1x1 project;
                same strides, ReLU6, residuals and drop-connect), then its 1x1 conv head with BN and ReLU6
    pooling     global average or max over each object's voxels -> one feature per object
    classifier  new: dropout, a linear layer and BatchNorm1d over the logits (Image2Point's classifier:
                Linear + BatchNorm1d)

The 2D stem and classifier are left out of the inflation (`REPLACED_2D_PREFIXES`): point features are not RGB
and the classes are new. The new stem keeps stride 1 where the 2D stem has stride 2, as Image2Point's
SPVCNN_cls stem does: an object normalised to the unit sphere at voxel 0.05 is only ~40 voxels across, and the
trunk alone already divides that by 16.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import MinkowskiEngine as ME
import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from pix2point.models.classifier_spec import Pooling
from pix2point.models.efficientnet_lite import load_efficientnet_lite0
from pix2point.models.fip import FipModule
from pix2point.models.inflation import InflationOptions, InflationReport, ModulePair, inflate_modules

REPLACED_2D_PREFIXES = ("_conv_stem.", "_bn0.", "_fc.")


@dataclass(frozen=True)
class MBConvSpec:
    """One MBConv block's shape, read from a 2D block."""

    in_channels: int
    out_channels: int
    expand_ratio: int
    kernel_size: int
    stride: int

    @property
    def hidden_channels(self) -> int:
        return self.in_channels * self.expand_ratio

    @property
    def has_residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


@dataclass(frozen=True)
class EfficientNetLayout:
    """Everything the 3D twin needs to know about a 2D EfficientNet-Lite."""

    stem_channels: int
    blocks: tuple[MBConvSpec, ...]
    head_channels: int
    bn_eps: float
    bn_momentum: float
    drop_connect_rate: float


def efficientnet_layout(model2d: EfficientNet) -> EfficientNetLayout:
    """The layout of `model2d`; only the Lite variants (ReLU6, no squeeze-excitation) have a twin."""
    params = model2d._global_params
    if params.relu_fn != "relu6" or any(block.has_se for block in model2d._blocks):
        raise ValueError("only EfficientNet-Lite (ReLU6, no squeeze-excitation) has a sparse twin")
    blocks = tuple(
        MBConvSpec(in_channels=block._block_args.input_filters, out_channels=block._block_args.output_filters,
                   expand_ratio=block._block_args.expand_ratio, kernel_size=block._depthwise_conv.kernel_size[0],
                   stride=block._depthwise_conv.stride[0])
        for block in model2d._blocks
    )
    return EfficientNetLayout(stem_channels=model2d._conv_stem.out_channels, blocks=blocks,
                              head_channels=model2d._conv_head.out_channels, bn_eps=model2d._bn0.eps,
                              bn_momentum=model2d._bn0.momentum, drop_connect_rate=params.drop_connect_rate or 0.0)


class ConvNorm(nn.Module):
    """A sparse conv, its BatchNorm and (optionally) ReLU6."""

    def __init__(self, conv: nn.Module, channels: int, layout: EfficientNetLayout, activate: bool) -> None:
        super().__init__()
        self.conv = conv
        self.norm = ME.MinkowskiBatchNorm(channels, eps=layout.bn_eps, momentum=layout.bn_momentum)
        self.activation = ME.MinkowskiReLU6() if activate else None

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        out = self.norm(self.conv(x))
        return out if self.activation is None else self.activation(out)


def _pointwise(in_channels: int, out_channels: int) -> ME.MinkowskiConvolution:
    return ME.MinkowskiConvolution(in_channels, out_channels, kernel_size=1, bias=False, dimension=3)


class ChannelwiseConvolution(ME.MinkowskiChannelwiseConvolution):
    """MinkowskiChannelwiseConvolution (same kernel, layout and output) computed in one gather and one
    index_add over all kernel offsets. ME's forward runs three indexed ops per offset (125 offsets for 5x5x5)
    in a Python loop: with it a Lite0 training step on CPU took about twice as long single-threaded, and
    ten times as long with two threads on a busy machine."""

    def forward(self, input: ME.SparseTensor) -> ME.SparseTensor:
        generator, manager = self.kernel_generator, input.coordinate_manager
        region_type, region_offset, _ = generator.get_kernel(input.tensor_stride, False)
        out_key = manager.stride(input.coordinate_map_key, generator.kernel_stride)
        kernel_map = manager.kernel_map(input.coordinate_map_key, out_key, generator.kernel_stride,
                                        generator.kernel_size, generator.kernel_dilation, region_type=region_type,
                                        region_offset=region_offset)
        pairs = [in_out.long().to(input.device) for in_out in kernel_map.values()]
        offsets = torch.cat([torch.full((in_out.shape[1],), offset, device=input.device)
                             for offset, in_out in zip(kernel_map.keys(), pairs)])
        rows_in, rows_out = torch.cat([in_out[0] for in_out in pairs]), torch.cat([in_out[1] for in_out in pairs])
        out = input.F.new_zeros(manager.size(out_key), self.in_channels)
        out = out.index_add(0, rows_out, input.F[rows_in] * self.kernel[offsets])
        if self.bias is not None:
            out = out + self.bias
        return ME.SparseTensor(out, coordinate_map_key=out_key, coordinate_manager=manager)


def drop_objects(x: ME.SparseTensor, rate: float) -> ME.SparseTensor:
    """Drop-connect per object (EfficientNet's stochastic depth, whose 2D version drops per image): the
    branch is zeroed for a random `rate` of the objects and scaled up by 1 / (1 - rate) for the others."""
    objects = x.C[:, 0].long()
    keep = (torch.rand(int(objects.max()) + 1, device=x.F.device) >= rate).to(x.F.dtype) / (1 - rate)
    return ME.SparseTensor(x.F * keep[objects].unsqueeze(1), coordinate_map_key=x.coordinate_map_key,
                           coordinate_manager=x.coordinate_manager)


class SparseMBConv(nn.Module):
    """MBConv as in the 2D block: expand (1x1x1) -> channelwise k^3 (strided) -> project (1x1x1) [+ input]."""

    def __init__(self, spec: MBConvSpec, layout: EfficientNetLayout, drop_connect_rate: float) -> None:
        super().__init__()
        self.spec = spec
        self.drop_connect_rate = drop_connect_rate
        hidden = spec.hidden_channels
        self.expand = (ConvNorm(_pointwise(spec.in_channels, hidden), hidden, layout, activate=True)
                       if spec.expand_ratio != 1 else None)
        depthwise = ChannelwiseConvolution(hidden, kernel_size=spec.kernel_size, stride=spec.stride,
                                                       bias=False, dimension=3)
        self.depthwise = ConvNorm(depthwise, hidden, layout, activate=True)
        self.project = ConvNorm(_pointwise(hidden, spec.out_channels), spec.out_channels, layout, activate=False)

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.depthwise(out))
        if not self.spec.has_residual:
            return out
        if self.training and self.drop_connect_rate > 0:
            out = drop_objects(out, self.drop_connect_rate)
        return out + x


def pool_per_object(x: ME.SparseTensor, pooling: Pooling) -> torch.Tensor:
    """[objects, channels]: the average or maximum of each object's voxel features, row i = batch index i.

    Not ME's global pooling: on CPU its output rows can disagree with its own output coordinates about which
    object they belong to (seen with ME 0.5.4), so a batch's rows could be silently permuted.
    """
    objects = x.C[:, 0].long()
    voxels = torch.bincount(objects)
    if (empty := torch.nonzero(voxels == 0).flatten()).numel():
        raise ValueError(f"objects {empty.tolist()} of the batch have no voxels")
    index = objects.unsqueeze(1).expand_as(x.F)
    pooled = x.F.new_zeros(len(voxels), x.F.shape[1])
    return pooled.scatter_reduce(0, index, x.F, reduce="mean" if pooling == "avg" else "amax", include_self=False)


class SparseObjectClassifier(FipModule):
    """New stem -> trunk (the inflatable part) -> global pooling per object -> new classifier.

    Input: a batch of objects as one SparseTensor (batch index = object); output: logits [objects, classes].
    """

    def __init__(self, stem: nn.Module, trunk: nn.Module, feature_channels: int, num_classes: int,
                 pooling: Pooling, dropout: float) -> None:
        super().__init__()
        self.feature_channels = feature_channels
        self.stem = stem
        self.trunk = trunk
        self.pooling = pooling
        # Image2Point's SPVCNN_cls classifier: Linear + BatchNorm1d over the logits.
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_channels, num_classes),
                                        nn.BatchNorm1d(num_classes))
        self._initialise_weights()

    def _initialise_weights(self) -> None:
        # For training from scratch, as MinkowskiEngine's examples; inflation overwrites the trunk.
        for module in self.modules():
            if isinstance(module, (ME.MinkowskiConvolution, ME.MinkowskiChannelwiseConvolution)):
                ME.utils.kaiming_normal_(module.kernel, mode="fan_out", nonlinearity="relu")

    def features(self, x: ME.SparseTensor) -> torch.Tensor:
        """One pooled feature per object, [objects, feature_channels], rows in batch-index order."""
        return pool_per_object(self.trunk(self.stem(x)), self.pooling)

    def forward(self, x: ME.SparseTensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SparseEfficientNet(SparseObjectClassifier):
    def __init__(self, layout: EfficientNetLayout, in_channels: int, num_classes: int, pooling: Pooling = "avg",
                 dropout: float = 0.2) -> None:
        stem_conv = ME.MinkowskiConvolution(in_channels, layout.stem_channels, kernel_size=3, bias=False,
                                            dimension=3)
        stem = ConvNorm(stem_conv, layout.stem_channels, layout, activate=False)  # Image2Point: conv + BN only
        # The 2D model scales drop-connect up linearly with block depth; so does the twin.
        blocks = [SparseMBConv(spec, layout, layout.drop_connect_rate * index / len(layout.blocks))
                  for index, spec in enumerate(layout.blocks)]
        head = ConvNorm(_pointwise(layout.blocks[-1].out_channels, layout.head_channels), layout.head_channels,
                        layout, activate=True)
        super().__init__(stem, nn.Sequential(*blocks, head), layout.head_channels, num_classes, pooling, dropout)
        self.layout = layout


def sparse_efficientnet_like(model2d: EfficientNet, in_channels: int, num_classes: int,
                             pooling: Pooling = "avg") -> SparseEfficientNet:
    """A randomly initialised twin of `model2d` (the `scratch` baseline)."""
    return SparseEfficientNet(efficientnet_layout(model2d), in_channels, num_classes, pooling)


def sparse_efficientnet_lite0(in_channels: int, num_classes: int, pooling: Pooling = "avg") -> SparseEfficientNet:
    """A randomly initialised twin of EfficientNet-Lite0 (no 2D weights are read)."""
    return sparse_efficientnet_like(EfficientNet.from_name("efficientnet-lite0"), in_channels, num_classes, pooling)


def efficientnet_module_pairs(model2d: EfficientNet, model3d: SparseEfficientNet) -> list[ModulePair]:
    """Each 2D conv and BatchNorm of the trunk beside the 3D layer it inflates into."""
    pairs: list[ModulePair] = []
    for block2d, block3d in zip(model2d._blocks, model3d.trunk[:-1], strict=True):
        if block3d.expand is not None:
            pairs += [(block2d._expand_conv, block3d.expand.conv), (block2d._bn0, block3d.expand.norm)]
        pairs += [(block2d._depthwise_conv, block3d.depthwise.conv), (block2d._bn1, block3d.depthwise.norm),
                  (block2d._project_conv, block3d.project.conv), (block2d._bn2, block3d.project.norm)]
    head3d = model3d.trunk[-1]
    return pairs + [(model2d._conv_head, head3d.conv), (model2d._bn1, head3d.norm)]


def inflate_efficientnet(model2d: EfficientNet, model3d: SparseEfficientNet,
                         options: InflationOptions = InflationOptions()) -> InflationReport:
    """Fill `model3d`'s trunk from `model2d`; the report lists every 2D tensor used and those replaced."""
    return inflate_modules(model2d, model3d, efficientnet_module_pairs(model2d, model3d), REPLACED_2D_PREFIXES,
                           model3d.trunk, options)


def inflated_efficientnet_lite0(in_channels: int, num_classes: int, options: InflationOptions = InflationOptions(),
                                pooling: Pooling = "avg", weights_path: Path | None = None,
                                ) -> tuple[SparseEfficientNet, InflationReport]:
    """The twin of EfficientNet-Lite0 inflated from its ImageNet weights (or those in `weights_path`)."""
    model2d = load_efficientnet_lite0(weights_path)
    model3d = sparse_efficientnet_like(model2d, in_channels, num_classes, pooling)
    return model3d, inflate_efficientnet(model2d, model3d, options)
