"""Image2Point inflation: 2D convolution and BatchNorm weights copied into MinkowskiEngine 3D layers.

The rule (chenfengxu714/image2point, model_zoo.py `weight_transform`):

- a k x k kernel becomes k x k x k by copying it along a new axis (`new_axis`), without dividing by k unless
  `scale_by_depth` asks for it;
- a 1x1 kernel becomes 1x1x1;
- a depthwise kernel (groups == channels) becomes a MinkowskiChannelwiseConvolution kernel by the same copy;
- a 1x1 stride-s kernel (a ResNet shortcut) becomes s x s x s stride s with the 1x1 weight in every cell;
- BatchNorm affine weights and running statistics are copied.

Layouts: MinkowskiConvolution keeps its kernel as [kernel_volume, in, out] ([in, out] for kernel size 1) and
MinkowskiChannelwiseConvolution as [kernel_volume, channels]. Kernel offsets are enumerated with the first
spatial axis (x) varying fastest, and output(u) = sum over offsets o of kernel[o] @ input(u + o), the same
cross-correlation as torch's conv2d; tests/models/test_inflation.py checks both against the 2D op.

Orientation: kernel rows run along `row_axis`, columns along the remaining axis. The default is the
reference's: its `weight_transform` (trans_type 'z-axis') fills torchsparse 1.2's offsets, x varying fastest,
so that the copies lie along y, ModelNet's up axis, with image rows along z and columns along x.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import MinkowskiEngine as ME
import torch
from torch import nn

from pix2point.models.classifier_spec import AXES, InflationOptions  # noqa: F401 (re-exported)

# A 2D module and the 3D module that receives its weights.
ModulePair = tuple[nn.Module, nn.Module]


class InflationError(ValueError):
    """A 2D weight that cannot be placed into the 3D network (or a 3D weight left without a 2D source)."""


@dataclass(frozen=True)
class InflationReport:
    """What an inflation did: `placed` maps each 2D state-dict key used to the 3D key it filled; `replaced`
    lists the 2D keys left out on purpose (layers the 3D network replaces with new ones)."""

    placed: dict[str, str]
    replaced: tuple[str, ...]

    def summary(self) -> str:
        return f"inflated {len(self.placed)} 2D tensors; {len(self.replaced)} replaced by new layers"


def spread_along_new_axis(plane: torch.Tensor, depth: int, options: InflationOptions) -> torch.Tensor:
    """[kh, kw, *rest] -> [kh * kw * depth, *rest]: `depth` copies of the plane along the new axis, flattened
    in MinkowskiEngine's kernel-offset order."""
    new, row_axis, column_axis = (AXES.index(axis) for axis in (options.new_axis, options.row_axis, options.column_axis))
    rest = plane.shape[2:]
    stacked = plane.unsqueeze(2).expand(plane.shape[0], plane.shape[1], depth, *rest)  # dims: row, column, new
    dim_of_axis = {row_axis: 0, column_axis: 1, new: 2}
    # Ordering dims as (z, y, x) and flattening in C order makes x vary fastest, as ME enumerates offsets.
    order = (dim_of_axis[2], dim_of_axis[1], dim_of_axis[0], *range(3, 3 + len(rest)))
    kernel = stacked.permute(order).reshape(-1, *rest)
    return kernel / depth if options.scale_by_depth else kernel


def regular_kernel(weight: torch.Tensor, options: InflationOptions) -> torch.Tensor:
    """[out, in, k, k] -> [k^3, in, out]."""
    return spread_along_new_axis(weight.permute(2, 3, 1, 0), weight.shape[-1], options)


def depthwise_kernel(weight: torch.Tensor, options: InflationOptions) -> torch.Tensor:
    """[channels, 1, k, k] -> [k^3, channels]."""
    return spread_along_new_axis(weight[:, 0].permute(1, 2, 0), weight.shape[-1], options)


def pointwise_kernel(weight: torch.Tensor) -> torch.Tensor:
    """[out, in, 1, 1] -> [in, out]."""
    return weight[:, :, 0, 0].t()


def strided_pointwise_kernel(weight: torch.Tensor, stride: int, options: InflationOptions) -> torch.Tensor:
    """[out, in, 1, 1] stride s -> [s^3, in, out]: every cell of the s x s x s kernel holds the 1x1 weight."""
    matrix = pointwise_kernel(weight)
    return spread_along_new_axis(matrix.expand(stride, stride, *matrix.shape), stride, options)


def inflated_conv_weight(conv2d: nn.Conv2d, conv3d: ME.MinkowskiConvolution | ME.MinkowskiChannelwiseConvolution,
                         options: InflationOptions) -> torch.Tensor:
    """The 3D kernel for `conv3d` made from `conv2d`'s weight; an InflationError says why they do not match."""
    declared = (conv2d.out_channels, conv2d.in_channels // conv2d.groups, *conv2d.kernel_size)
    if tuple(conv2d.weight.shape) != declared:
        raise InflationError(f"the conv declares a weight of {declared}")
    size, stride = _square(conv2d.kernel_size, "kernel"), _square(conv2d.stride, "stride")
    if conv2d.dilation != (1, 1):
        raise InflationError(f"dilation {conv2d.dilation} is not supported")
    # A strided 1x1 conv becomes an s-cell kernel; every other conv keeps its kernel size.
    size_3d = stride if size == 1 and stride > 1 else size
    _expect_geometry(conv3d, size_3d, stride)
    weight = conv2d.weight.detach()
    if isinstance(conv3d, ME.MinkowskiChannelwiseConvolution):
        if not conv2d.groups == conv2d.in_channels == conv2d.out_channels:
            raise InflationError(f"a channelwise 3D conv needs a depthwise 2D conv, got groups={conv2d.groups} "
                                 f"for {conv2d.in_channels} -> {conv2d.out_channels} channels")
        return depthwise_kernel(weight, options)
    if conv2d.groups != 1:
        raise InflationError(f"grouped 2D conv (groups={conv2d.groups}) needs a channelwise 3D conv")
    if size == 1:
        return pointwise_kernel(weight) if stride == 1 else strided_pointwise_kernel(weight, stride, options)
    return regular_kernel(weight, options)


def inflate_conv(conv2d: nn.Conv2d, conv3d: nn.Module, options: InflationOptions) -> dict[str, str]:
    """Fill `conv3d` from `conv2d`; returns the 2D parameter name -> 3D parameter name of what it copied."""
    if not isinstance(conv3d, (ME.MinkowskiConvolution, ME.MinkowskiChannelwiseConvolution)):
        raise InflationError(f"a 2D conv goes into a Minkowski(Channelwise)Convolution, not {type(conv3d).__name__}")
    kernel = inflated_conv_weight(conv2d, conv3d, options)
    _copy_checked(kernel, conv3d.kernel, "weight")
    if conv2d.bias is None:
        if conv3d.bias is not None:
            raise InflationError("the 3D conv has a bias the 2D conv lacks: it would be left unfilled")
        return {"weight": "kernel"}
    if conv3d.bias is None:
        raise InflationError("the 2D conv has a bias but the 3D conv has none to receive it")
    _copy_checked(conv2d.bias.detach().view(1, -1), conv3d.bias, "bias")
    return {"weight": "kernel", "bias": "bias"}


_BATCHNORM_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def copy_batchnorm(bn2d: nn.BatchNorm2d, bn3d: nn.Module) -> dict[str, str]:
    """Copy affine weights, running statistics and eps (it shapes the output) into a MinkowskiBatchNorm."""
    if not isinstance(bn3d, ME.MinkowskiBatchNorm):
        raise InflationError(f"a 2D BatchNorm goes into a MinkowskiBatchNorm, not {type(bn3d).__name__}")
    target = bn3d.bn
    for name in _BATCHNORM_TENSORS:
        _copy_checked(getattr(bn2d, name).detach(), getattr(target, name), name)
    target.eps = bn2d.eps
    return {name: f"bn.{name}" for name in _BATCHNORM_TENSORS}


def inflate_modules(model2d: nn.Module, model3d: nn.Module, pairs: Iterable[ModulePair],
                    replaced_prefixes: Sequence[str], inflated_part: nn.Module,
                    options: InflationOptions) -> InflationReport:
    """Inflate each (2D, 3D) pair and account for every tensor.

    Every 2D state-dict key must be placed or lie under `replaced_prefixes`, and every tensor of
    `inflated_part` (the 3D submodule that should come entirely from 2D) must have been filled; otherwise an
    InflationError names the keys.
    """
    names2d = _module_names(model2d)
    names3d = _module_names(model3d)
    placed: dict[str, str] = {}
    for module2d, module3d in pairs:
        prefix2d, prefix3d = names2d[id(module2d)], names3d[id(module3d)]
        try:
            local = _inflate_pair(module2d, module3d, options)
        except InflationError as error:
            shape = tuple(module2d.weight.shape) if hasattr(module2d, "weight") else "?"
            raise InflationError(f"2D weight {prefix2d}.weight {shape} cannot fill 3D {prefix3d}: {error}") from error
        placed.update({f"{prefix2d}.{name2d}": f"{prefix3d}.{name3d}" for name2d, name3d in local.items()})
    keys2d = list(model2d.state_dict())
    replaced = tuple(key for key in keys2d if key.startswith(tuple(replaced_prefixes)))
    if unplaced := [key for key in keys2d if key not in placed and key not in replaced]:
        raise InflationError(f"2D weights not placed in the 3D network: {', '.join(unplaced)}")
    inflated_prefix = names3d[id(inflated_part)]
    filled = set(placed.values())
    if unfilled := [key for key in (f"{inflated_prefix}.{name}" for name in inflated_part.state_dict())
                    if key not in filled]:
        raise InflationError(f"3D weights with no 2D source: {', '.join(unfilled)}")
    return InflationReport(placed=placed, replaced=replaced)


def _inflate_pair(module2d: nn.Module, module3d: nn.Module, options: InflationOptions) -> dict[str, str]:
    if isinstance(module2d, nn.Conv2d):
        return inflate_conv(module2d, module3d, options)
    if isinstance(module2d, nn.BatchNorm2d):
        return copy_batchnorm(module2d, module3d)
    raise InflationError(f"no inflation rule for {type(module2d).__name__}")


def _module_names(model: nn.Module) -> dict[int, str]:
    return {id(module): name for name, module in model.named_modules()}


def _square(pair: tuple[int, ...], what: str) -> int:
    if len(set(pair)) != 1:
        raise InflationError(f"non-square {what} {pair} is not supported")
    return pair[0]


def _expect_geometry(conv3d: nn.Module, kernel_size: int, stride: int) -> None:
    generator = conv3d.kernel_generator
    if list(generator.kernel_size) != [kernel_size] * 3 or list(generator.kernel_stride) != [stride] * 3:
        raise InflationError(f"the 3D conv should have kernel size {kernel_size} and stride {stride}, has "
                             f"{list(generator.kernel_size)} and {list(generator.kernel_stride)}")


def _copy_checked(source: torch.Tensor, target: torch.Tensor, name: str) -> None:
    if source.shape != target.shape:
        raise InflationError(f"{name} inflates to {tuple(source.shape)}, the 3D layer holds {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(source)
