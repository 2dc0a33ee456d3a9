from collections import OrderedDict

import pytest
import torch
from torch import nn

from pix2point.models.backbone_spec import unet_size
from pix2point.models.heads import ProjectionHead, SegmentationHead
from pix2point.models.res16unet import Res16UNet, UNetSize
from pix2point.models.voxelize import collate_sparse, voxelize

VOXEL_SIZE = 0.05


@pytest.fixture(scope="module")
def scene_batch():
    """Two samples of a few hundred points in a 1 m cube, with RGB-like input features."""
    generator = torch.Generator().manual_seed(0)
    clouds = [torch.rand(count, 3, generator=generator) for count in (300, 200)]
    samples = []
    for xyz in clouds:
        voxels = voxelize(xyz, VOXEL_SIZE)
        samples.append((voxels, voxels.voxel_features(torch.rand(len(xyz), 3, generator=generator))))
    return clouds, collate_sparse(samples)


@pytest.mark.parametrize("name", ["tiny", "Res16UNet14A"])
def test_forward_gives_per_voxel_features_on_the_input_coordinates_and_backpropagates(scene_batch, name):
    _, batch = scene_batch
    size = unet_size(name)
    network = Res16UNet(3, size)
    inputs = batch.sparse_tensor()
    out = network(inputs)
    assert out.F.shape == (len(batch.coordinates), size.planes[-1]) == (len(batch.coordinates), network.out_channels)
    assert out.tensor_stride == [1, 1, 1]
    assert torch.equal(out.C, inputs.C)
    out.F.square().mean().backward()
    grads = {name: parameter.grad for name, parameter in network.named_parameters()}
    assert all(grad is not None and torch.isfinite(grad).all() for grad in grads.values())
    # The stem sits behind every encoder and decoder stage: a gradient there means the whole path is connected.
    assert grads["stem.kernel"].abs().sum() > 0


def test_point_rows_of_the_network_output_belong_to_each_points_voxel(scene_batch):
    clouds, batch = scene_batch
    inputs = batch.sparse_tensor()
    out = Res16UNet(3, UNetSize.tiny())(inputs)
    for sample, xyz in enumerate(clouds):
        rows = batch.feature_rows(inputs, torch.full((len(xyz),), sample), torch.arange(len(xyz)))
        expected = torch.cat([torch.full((len(xyz), 1), sample), torch.floor(xyz / VOXEL_SIZE)], dim=1).int()
        assert torch.equal(out.C[rows], expected)


def test_stages_follow_the_size_table():
    size = UNetSize.res16unet34c()
    network = Res16UNet(3, size, stem_kernel_size=5)
    stages = [*network.encoder, *network.decoder]
    assert [len(stage.blocks) for stage in stages] == list(size.layers)
    assert [stage.blocks[-1].conv2.out_channels for stage in stages] == list(size.planes)
    # Decoder inputs are the upsampled features concatenated with the encoder skip (stride 8, 4, 2, 1).
    assert [stage.blocks[0].conv1.in_channels for stage in network.decoder] == [256 + 128, 128 + 64, 96 + 32, 96 + 32]
    assert network.stem.kernel.shape[0] == 5 ** 3
    assert network.stem_norm.bn.momentum == 0.05


def test_sizes_reject_bad_tables_and_names():
    with pytest.raises(ValueError, match="8 planes"):
        UNetSize(planes=(32, 64), layers=(1, 1))
    with pytest.raises(ValueError, match="unknown UNet size"):
        unet_size("Res16UNet18")


def test_pretrained_backbone_loads_into_a_segmentation_model_with_a_fresh_head(scene_batch):
    _, batch = scene_batch
    inputs = batch.sparse_tensor()
    size = UNetSize.tiny()
    pretrained = Res16UNet(3, size)
    pretrained(inputs)  # one training-mode pass so the BN running statistics differ from a fresh model's
    segmentation = nn.Sequential(OrderedDict(backbone=Res16UNet(3, size), head=SegmentationHead(size.planes[-1], 5)))

    segmentation.backbone.load_state_dict(pretrained.state_dict(), strict=True)

    pretrained.eval(), segmentation.eval()
    with torch.no_grad():
        assert torch.allclose(segmentation.backbone(inputs).F, pretrained(inputs).F)
        assert segmentation(inputs).F.shape == (len(batch.coordinates), 5)


def test_projection_head_gives_unit_embeddings_on_the_same_coordinates(scene_batch):
    _, batch = scene_batch
    inputs = batch.sparse_tensor()
    features = Res16UNet(3, UNetSize.tiny())(inputs)
    embeddings = ProjectionHead(features.F.shape[1], 8)(features)
    assert embeddings.F.shape == (len(batch.coordinates), 8)
    assert torch.allclose(embeddings.F.norm(dim=1), torch.ones(len(batch.coordinates)), atol=1e-5)
    assert torch.equal(embeddings.C, inputs.C)
