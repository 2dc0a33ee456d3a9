"""Inflation: an inflated 3D layer applied to an image laid out as a plane of voxels gives the 2D layer's output.

The 2D references are the real EfficientNet-Lite0 layers with their ImageNet weights, fed the real cat photo
(or the network's own activations on it). Images lie in the plane new_axis = PLANE_LEVEL with rows along
row_axis and columns along the third axis, which is the convention inflation.py states.
"""

from __future__ import annotations

import cv2
import MinkowskiEngine as ME
import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from torch import nn

from pix2point.models.efficientnet_lite import (
    EFFICIENTNET_LITE0_MEAN,
    EFFICIENTNET_LITE0_STD,
    load_efficientnet_lite0,
)
from pix2point.models.inflated_efficientnet import (
    ChannelwiseConvolution,
    drop_objects,
    inflate_efficientnet,
    pool_per_object,
    sparse_efficientnet_like,
)
from pix2point.models.inflated_resnet import SparseResNet, inflate_resnet, inflated_resnet
from pix2point.models.inflation import InflationError, InflationOptions, inflate_conv
from pix2point.models.resnet import resnet

AXES = ("x", "y", "z")
ORIENTATIONS = [InflationOptions(new_axis=new, row_axis=row) for new in AXES for row in AXES if row != new]
PLANE_LEVEL = 3
# Trunk of EfficientNet-Lite0: block 0 has no expansion (2 convs), blocks 1-15 have 3, plus the conv head.
TRUNK_CONVS = 2 + 15 * 3 + 1
BATCHNORM_TENSORS = 5  # weight, bias, running_mean, running_var, num_batches_tracked


@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    return load_efficientnet_lite0()


@pytest.fixture(scope="module")
def cat_image() -> torch.Tensor:
    """The scikit-image cat photo at 64x96, normalised as EfficientNet-Lite0 expects: [1, 3, 64, 96]."""
    pixels = cv2.resize(skimage.data.chelsea(), (96, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    pixels = (pixels - np.array(EFFICIENTNET_LITE0_MEAN, np.float32)) / np.array(EFFICIENTNET_LITE0_STD, np.float32)
    return torch.from_numpy(pixels).permute(2, 0, 1)[None]


def activations_before_block(model: nn.Module, image: torch.Tensor, block: int) -> torch.Tensor:
    """The real input of 2D block `block` when the network sees `image`."""
    with torch.no_grad():
        out = model._swish(model._bn0(model._conv_stem(image)))
        for index in range(block):
            out = model._blocks[index](out)
    return out


def depthwise_input(model: nn.Module, image: torch.Tensor, block: int) -> torch.Tensor:
    """The real input of block `block`'s depthwise conv (after its expansion)."""
    stage = model._blocks[block]
    with torch.no_grad():
        return stage._swish(stage._bn0(stage._expand_conv(activations_before_block(model, image, block))))


def plane_coordinates(height: int, width: int, options: InflationOptions, step: int = 1) -> torch.Tensor:
    """[height * width, 4] (batch, x, y, z) of pixel (row, column) -> voxel, row-major, `step` apart."""
    rows, columns = torch.meshgrid(torch.arange(height) * step, torch.arange(width) * step, indexing="ij")
    by_axis = {options.new_axis: torch.full_like(rows, PLANE_LEVEL), options.row_axis: rows, options.column_axis: columns}
    return torch.stack([torch.zeros_like(rows), *(by_axis[axis] for axis in AXES)], dim=-1).reshape(-1, 4).int()


def image_as_plane(image: torch.Tensor, options: InflationOptions, step: int = 1) -> tuple[ME.SparseTensor, torch.Tensor]:
    """A [1, C, H, W] image as one voxel per pixel; also returns the coordinates, row-major."""
    _, channels, height, width = image.shape
    coordinates = plane_coordinates(height, width, options, step)
    features = image[0].permute(1, 2, 0).reshape(-1, channels)
    return ME.SparseTensor(features.contiguous(), coordinates), coordinates


def plane_as_image(sparse: ME.SparseTensor, coordinates: torch.Tensor, height: int, width: int) -> torch.Tensor:
    features = sparse.features_at_coordinates(coordinates.float())
    return features.reshape(height, width, -1).permute(2, 0, 1)[None]


def through_plane(layer: nn.Module, image: torch.Tensor, options: InflationOptions) -> torch.Tensor:
    sparse, coordinates = image_as_plane(image, options)
    with torch.no_grad():
        return plane_as_image(layer(sparse), coordinates, *image.shape[-2:])


def inflated(conv2d: nn.Conv2d, conv3d: nn.Module, options: InflationOptions) -> nn.Module:
    inflate_conv(conv2d, conv3d, options)
    return conv3d


def test_default_orientation_is_the_references_copies_along_y_rows_along_z_columns_along_x():
    # A unit impulse at the origin among its 26 zero neighbours: the inflated conv gives kernel[-(x, y, z)] at
    # (x, y, z), as conv2d gives weight[1 - i, 1 - j] at pixel (i, j) of a one-pixel image. So rows must run
    # along z, columns along x, and every y must carry the same plane.
    conv2d = nn.Conv2d(1, 1, 3, bias=False)
    conv2d.weight.data.copy_(torch.arange(1.0, 10.0).view(1, 1, 3, 3))
    conv3d = inflated(conv2d, ME.MinkowskiConvolution(1, 1, kernel_size=3, dimension=3), InflationOptions())
    sites = [(x, y, z) for x in (-1, 0, 1) for y in (-1, 0, 1) for z in (-1, 0, 1)]
    coordinates = torch.tensor([(0, *site) for site in sites], dtype=torch.int32)
    impulse = torch.tensor([[1.0 if site == (0, 0, 0) else 0.0] for site in sites])
    with torch.no_grad():
        out = conv3d(ME.SparseTensor(impulse, coordinates)).features_at_coordinates(coordinates.float())[:, 0]
    weight = conv2d.weight[0, 0]
    expected = torch.stack([weight[1 - z, 1 - x] for x, _, z in sites])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("options", ORIENTATIONS, ids=lambda o: f"copies_{o.new_axis}_rows_{o.row_axis}")
def test_regular_3x3_conv_on_a_plane_matches_2d(lite0, cat_image, options):
    # The stem's real 3x3 weight, applied at stride 1 so that the 2D and 3D outputs are defined on the same grid.
    weight = lite0._conv_stem.weight
    conv2d = nn.Conv2d(3, weight.shape[0], 3, padding=1, bias=False)
    conv2d.weight.data.copy_(weight)
    conv3d = ME.MinkowskiConvolution(3, weight.shape[0], kernel_size=3, dimension=3)
    conv3d = inflated(conv2d, conv3d, options)

    expected = F.conv2d(cat_image, weight, padding=1)
    torch.testing.assert_close(through_plane(conv3d, cat_image, options), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("options", ORIENTATIONS, ids=lambda o: f"copies_{o.new_axis}_rows_{o.row_axis}")
def test_depthwise_convs_on_a_plane_match_2d(lite0, cat_image, options):
    for block in (2, 4):  # a 3x3 and a 5x5 depthwise conv
        depthwise2d = lite0._blocks[block]._depthwise_conv
        features = depthwise_input(lite0, cat_image, block)
        size = depthwise2d.kernel_size[0]
        conv3d = ChannelwiseConvolution(depthwise2d.in_channels, kernel_size=size, dimension=3)
        conv3d = inflated(depthwise2d, conv3d, options)

        with torch.no_grad():
            expected = F.conv2d(features, depthwise2d.weight, padding=size // 2, groups=depthwise2d.groups)
        torch.testing.assert_close(through_plane(conv3d, features, options), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("stride", [1, 2])
def test_the_twins_channelwise_conv_computes_what_minkowskiengines_does(stride):
    torch.manual_seed(0)
    coordinates = ME.utils.batched_coordinates([torch.unique(torch.randint(0, 9, (300, 3)), dim=0)] * 2)
    features = torch.randn(len(coordinates), 6)
    stock = ME.MinkowskiChannelwiseConvolution(6, kernel_size=3, stride=stride, bias=True, dimension=3)
    twin = ChannelwiseConvolution(6, kernel_size=3, stride=stride, bias=True, dimension=3)
    twin.load_state_dict(stock.state_dict())

    outputs = []
    for conv in (stock, twin):
        sparse = ME.SparseTensor(features, coordinates)
        out = conv(sparse)
        (out.F * torch.arange(out.F.numel()).view_as(out.F).sin()).sum().backward()
        outputs.append((out.C, out.F.detach(), conv.kernel.grad, conv.bias.grad))
    for stock_tensor, twin_tensor in zip(*outputs):
        torch.testing.assert_close(twin_tensor, stock_tensor, rtol=1e-5, atol=1e-5)


def test_pointwise_conv_on_a_plane_matches_2d(lite0, cat_image):
    expand2d = lite0._blocks[2]._expand_conv
    features = activations_before_block(lite0, cat_image, 2)
    conv3d = ME.MinkowskiConvolution(expand2d.in_channels, expand2d.out_channels, kernel_size=1, dimension=3)
    conv3d = inflated(expand2d, conv3d, InflationOptions())

    with torch.no_grad():
        expected = expand2d(features)
    torch.testing.assert_close(through_plane(conv3d, features, InflationOptions()), expected, rtol=1e-5, atol=1e-4)


def test_scale_by_depth_divides_the_output_by_the_kernel_size(lite0, cat_image):
    conv2d = nn.Conv2d(3, 8, 3, padding=1, bias=True)
    conv2d.weight.data.copy_(lite0._conv_stem.weight[:8])
    conv2d.bias.data.normal_()
    options = InflationOptions(scale_by_depth=True)
    conv3d = inflated(conv2d, ME.MinkowskiConvolution(3, 8, kernel_size=3, bias=True, dimension=3), options)

    with torch.no_grad():
        expected = F.conv2d(cat_image, conv2d.weight, padding=1) / 3 + conv2d.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(through_plane(conv3d, cat_image, options), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("scale_by_depth", [False, True])
def test_strided_1x1_becomes_a_2x2x2_stride_2_kernel_that_repeats_it(scale_by_depth):
    """With one voxel per 2x2x2 cell (the even pixels of a plane), a 2x2x2 stride-2 kernel holding the 1x1
    weight everywhere gives the 2D 1x1 stride-2 conv, which reads exactly those pixels."""
    torch.manual_seed(0)
    conv2d = nn.Conv2d(6, 5, 1, stride=2, bias=False)
    conv3d = ME.MinkowskiConvolution(6, 5, kernel_size=2, stride=2, dimension=3)
    conv3d = inflated(conv2d, conv3d, InflationOptions(scale_by_depth=scale_by_depth))
    image = torch.randn(1, 6, 8, 10)

    even_pixels = image[:, :, ::2, ::2]
    sparse, coordinates = image_as_plane(even_pixels, InflationOptions(), step=2)
    with torch.no_grad():
        out = conv3d(sparse)
        expected = conv2d(image) / (2 if scale_by_depth else 1)
    # The plane sits at new_axis = 3, inside the cell starting at 2.
    cells = coordinates.clone()
    cells[:, 1 + AXES.index(InflationOptions().new_axis)] = PLANE_LEVEL - PLANE_LEVEL % 2
    torch.testing.assert_close(plane_as_image(out, cells, 4, 5), expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def inflated_lite0(lite0):
    model3d = sparse_efficientnet_like(lite0, in_channels=3, num_classes=10)
    report = inflate_efficientnet(lite0, model3d)
    return model3d.eval(), report


@pytest.mark.parametrize("block", [2, 4])
def test_a_whole_stride_1_block_on_a_plane_matches_2d(lite0, cat_image, inflated_lite0, block):
    model3d, _ = inflated_lite0
    features = activations_before_block(lite0, cat_image, block)
    with torch.no_grad():
        expected = lite0._blocks[block](features)
    torch.testing.assert_close(through_plane(model3d.trunk[block], features, InflationOptions()), expected, rtol=1e-5, atol=1e-4)


def test_inflating_lite0_places_every_trunk_conv_and_batchnorm(lite0, inflated_lite0):
    model3d, report = inflated_lite0
    assert len(report.placed) == TRUNK_CONVS * (1 + BATCHNORM_TENSORS)
    assert set(report.replaced) == {"_conv_stem.weight", "_fc.weight", "_fc.bias",
                                    *(f"_bn0.{name}" for name in ("weight", "bias", "running_mean", "running_var",
                                                                  "num_batches_tracked"))}
    assert set(report.placed) | set(report.replaced) == set(lite0.state_dict())
    trunk_keys = {f"trunk.{key}" for key in model3d.trunk.state_dict()}
    assert set(report.placed.values()) == trunk_keys
    state2d, state3d = lite0.state_dict(), model3d.state_dict()
    for key2d, key3d in report.placed.items():
        if "running" in key2d:
            assert torch.equal(state2d[key2d], state3d[key3d]), key2d


def test_a_2d_weight_of_unexpected_shape_is_an_error_naming_it(lite0):
    model3d = sparse_efficientnet_like(lite0, in_channels=3, num_classes=10)
    original = lite0._blocks[3]._project_conv.weight
    try:
        lite0._blocks[3]._project_conv.weight = nn.Parameter(torch.zeros(40, 144, 3, 3))
        with pytest.raises(InflationError, match=r"_blocks\.3\._project_conv\.weight \(40, 144, 3, 3\)"):
            inflate_efficientnet(lite0, model3d)
    finally:
        lite0._blocks[3]._project_conv.weight = original


def test_a_2d_weight_with_no_place_is_an_error_naming_it(lite0):
    model3d = sparse_efficientnet_like(lite0, in_channels=3, num_classes=10)
    try:
        lite0._blocks[5].extra = nn.Linear(2, 2)
        with pytest.raises(InflationError, match=r"not placed.*_blocks\.5\.extra\.weight"):
            inflate_efficientnet(lite0, model3d)
    finally:
        del lite0._blocks[5].extra


def test_a_depthwise_weight_cannot_fill_a_regular_conv():
    depthwise = nn.Conv2d(4, 4, 3, groups=4, bias=False)
    with pytest.raises(InflationError, match="grouped 2D conv"):
        inflate_conv(depthwise, ME.MinkowskiConvolution(4, 4, kernel_size=3, dimension=3), InflationOptions())


# ResNet twins: no ResNet weights can be downloaded here, so these use random weights and random BatchNorm
# statistics (a weight that fails to copy then shows) and a weights file the test writes.


def random_resnet(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = resnet(name)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    return model.eval()


@pytest.mark.parametrize(("name", "block"), [("resnet18", 1), ("resnet50", 0)])
def test_a_whole_stride_1_resnet_block_on_a_plane_matches_2d(name, block):
    """ResNet-18's layer1[1] (identity shortcut) and ResNet-50's layer1[0] (1x1 shortcut to 256 channels)."""
    model2d = random_resnet(name)
    model3d = SparseResNet(model2d, in_channels=3, num_classes=4)
    inflate_resnet(model2d, model3d)
    features = torch.randn(1, model2d.layer1[block].conv1.in_channels, 12, 14)
    with torch.no_grad():
        expected = model2d.layer1[block](features)
    actual = through_plane(model3d.trunk[0][block].eval(), features, InflationOptions())
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("name", "convs"), [("resnet18", 8 * 2 + 3), ("resnet50", 16 * 3 + 4)])
def test_inflating_a_resnet_from_a_weights_file_places_every_trunk_tensor(tmp_path, name, convs):
    model2d = random_resnet(name)
    path = tmp_path / f"{name}.pth"
    torch.save(model2d.state_dict(), path)
    model3d, report = inflated_resnet(name, path, in_channels=3, num_classes=4)

    assert len(report.placed) == convs * (1 + BATCHNORM_TENSORS)
    assert {key.split(".")[0] for key in report.replaced} == {"conv1", "bn1", "fc"}
    # The stride-2 shortcut of layer2: every cell of its 2x2x2 kernel holds the 1x1 weight, as [in, out].
    assert report.placed["layer2.0.downsample.0.weight"] == "trunk.1.0.downsample.0.kernel"
    shortcut = model3d.trunk[1][0].downsample[0].kernel
    assert shortcut.shape[0] == 8
    assert all(torch.equal(cell, model2d.layer2[0].downsample[0].weight[:, :, 0, 0].t()) for cell in shortcut)


def test_the_resnet_twin_gives_each_object_its_own_row():
    model3d = SparseResNet(random_resnet("resnet18"), in_channels=3, num_classes=4).eval()
    torch.manual_seed(0)
    objects = [torch.unique(torch.randint(0, extent, (500, 3)), dim=0) for extent in (12, 25, 40)]

    def features(batch: list[torch.Tensor]) -> torch.Tensor:
        coordinates = ME.utils.batched_coordinates(batch)
        with torch.no_grad():
            return model3d.features(ME.SparseTensor(coordinates[:, 1:].float() / 40, coordinates))

    together = features(objects)
    assert together.shape == (3, model3d.feature_channels)
    assert torch.pdist(together).min() > 1e-3  # distinct objects (features ~1e-2), so a row mix-up would show
    # BN in eval mode: an object's features do not depend on its batch-mates, so row i is object i alone.
    torch.testing.assert_close(together, torch.cat([features([points]) for points in objects]), rtol=1e-4, atol=1e-6)

def test_drop_connect_zeroes_whole_objects_and_rescales_the_rest():
    torch.manual_seed(0)
    coordinates = ME.utils.batched_coordinates([torch.randint(0, 5, (30, 3)).unique(dim=0) for _ in range(16)])
    features = torch.rand(len(coordinates), 4) + 1
    dropped = drop_objects(ME.SparseTensor(features, coordinates), rate=0.5)
    ratio = dropped.F / ME.SparseTensor(features, coordinates).F
    per_object = [ratio[dropped.C[:, 0] == index] for index in range(16)]
    assert all(torch.allclose(rows, rows[0, 0]) for rows in per_object)
    assert {round(float(rows[0, 0]), 4) for rows in per_object} == {0.0, 2.0}



@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_pooling_gives_row_i_to_object_i(pooling):
    torch.manual_seed(0)
    objects = [torch.unique(torch.randint(0, extent, (200, 3)), dim=0) for extent in (6, 9, 12)]
    coordinates = ME.utils.batched_coordinates(objects)
    shuffle = torch.randperm(len(coordinates))
    features = torch.randn(len(coordinates), 5)
    pooled = pool_per_object(ME.SparseTensor(features[shuffle], coordinates[shuffle]), pooling)
    expected = torch.stack([
        features[coordinates[:, 0] == index].mean(0) if pooling == "avg" else
        features[coordinates[:, 0] == index].amax(0) for index in range(3)
    ])
    torch.testing.assert_close(pooled, expected)


def test_pooling_refuses_a_batch_with_an_empty_object():
    coordinates = ME.utils.batched_coordinates([torch.randint(0, 9, (50, 3)).unique(dim=0)] * 3)
    coordinates = coordinates[coordinates[:, 0] != 1]
    with pytest.raises(ValueError, match=r"objects \[1\] of the batch have no voxels"):
        pool_per_object(ME.SparseTensor(torch.rand(len(coordinates), 3), coordinates), "avg")
