import pytest
import torch

from pix2point.models.voxelize import collate_sparse, voxelize

VOXEL_SIZE = 0.1


def test_points_sharing_a_voxel_map_to_one_voxel():
    xyz = torch.tensor([[0.01, 0.02, 0.03], [0.09, 0.05, 0.01], [0.15, 0.0, 0.0], [-0.05, 0.0, 0.0]])
    voxels = voxelize(xyz, VOXEL_SIZE)
    assert len(voxels.coordinates) == 3
    assert voxels.point_to_voxel[0] == voxels.point_to_voxel[1]
    assert len(set(voxels.point_to_voxel.tolist())) == 3
    # Floor, not truncation: a point just below zero lies in voxel -1.
    assert voxels.coordinates[voxels.point_to_voxel[3]].tolist() == [-1, 0, 0]


def test_every_point_and_every_representative_lies_in_its_voxel():
    xyz = torch.rand(500, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    voxels = voxelize(xyz, VOXEL_SIZE)
    point_voxels = torch.floor(xyz / VOXEL_SIZE).int()
    assert torch.equal(voxels.coordinates[voxels.point_to_voxel], point_voxels)
    assert torch.equal(point_voxels[voxels.representative_point], voxels.coordinates)
    assert len(torch.unique(voxels.coordinates, dim=0)) == len(voxels.coordinates)
    assert torch.equal(voxels.voxel_features(xyz), xyz[voxels.representative_point])


def test_rejects_bad_points_and_sizes():
    with pytest.raises(ValueError, match=r"\[N, 3\] float"):
        voxelize(torch.zeros(4, 2), VOXEL_SIZE)
    with pytest.raises(ValueError, match="positive"):
        voxelize(torch.zeros(4, 3), 0.0)
    with pytest.raises(ValueError, match="non-finite"):
        voxelize(torch.tensor([[0.0, float("nan"), 0.0]]), VOXEL_SIZE)


def two_samples():
    generator = torch.Generator().manual_seed(1)
    clouds = [torch.rand(400, 3, generator=generator), torch.rand(250, 3, generator=generator) - 0.5]
    samples = []
    for xyz in clouds:
        voxels = voxelize(xyz, VOXEL_SIZE)
        samples.append((voxels, voxels.coordinates.float()))  # features that name their own voxel
    return clouds, samples


def test_each_points_feature_row_is_the_row_of_its_voxel():
    clouds, samples = two_samples()
    batch = collate_sparse(samples)
    tensor = batch.sparse_tensor()
    for sample, xyz in enumerate(clouds):
        rows = batch.feature_rows(tensor, torch.full((len(xyz),), sample), torch.arange(len(xyz)))
        point_voxels = torch.floor(xyz / VOXEL_SIZE)
        assert torch.equal(tensor.F[rows], point_voxels)
        assert torch.equal(tensor.C[rows, 0], torch.full((len(xyz),), sample, dtype=torch.int32))
        assert torch.equal(tensor.C[rows, 1:], point_voxels.int())


def test_rows_of_mixed_samples_in_one_call():
    clouds, samples = two_samples()
    batch = collate_sparse(samples)
    tensor = batch.sparse_tensor()
    sample_index, point_index = torch.tensor([1, 0, 1, 0]), torch.tensor([249, 0, 3, 399])
    rows = batch.feature_rows(tensor, sample_index, point_index)
    expected = torch.stack([torch.floor(clouds[s][i] / VOXEL_SIZE) for s, i in zip(sample_index, point_index)])
    assert torch.equal(tensor.F[rows], expected)


def test_batch_layout_and_offsets():
    _, samples = two_samples()
    batch = collate_sparse(samples)
    voxel_counts = [len(voxels.coordinates) for voxels, _ in samples]
    assert batch.voxel_offsets.tolist() == [0, voxel_counts[0], sum(voxel_counts)]
    assert batch.point_offsets.tolist() == [0, 400, 650]
    second = slice(voxel_counts[0], None)
    assert torch.equal(batch.coordinates[second, 1:], samples[1][0].coordinates)
    assert (batch.coordinates[second, 0] == 1).all() and (batch.coordinates[: voxel_counts[0], 0] == 0).all()


def test_rejects_mismatched_features_and_foreign_tensors():
    _, samples = two_samples()
    voxels, features = samples[0]
    with pytest.raises(ValueError, match="feature rows"):
        collate_sparse([(voxels, features[:-1])])
    other = collate_sparse(samples[:1]).sparse_tensor()
    with pytest.raises(ValueError, match="not built from this batch"):
        collate_sparse(samples).feature_rows(other, torch.tensor([0]), torch.tensor([0]))


def test_points_far_from_the_origin_are_refused_not_wrapped_into_one_voxel():
    """Un-centred clouds (PRBonn/segcontrast#10): at 5e7 m a 2 cm voxel index passes int32, and these two points
    16 m apart both landed in the voxel at y = -2**31; at 1e6 m float32 no longer tells 2 cm voxels apart."""
    for y in (5e7, 1e6):
        with pytest.raises(ValueError, match="from the origin: voxel indices of 0.02 m would reach"):
            voxelize(torch.tensor([[0.0, y, 0.0], [0.0, y + 16, 0.0]]), 0.02)
    near = voxelize(torch.tensor([[0.0, 300.0, 0.0], [0.0, 316.0, 0.0]]), 0.02)  # 15 000 voxels out: fine
    assert near.coordinates[:, 1].tolist() == [15000, 15800]


def test_an_empty_batch_is_refused_before_minkowski_engine_sees_it():
    """An empty sparse tensor crashes MinkowskiEngine's first convolution with SIGSEGV (NVIDIA/MinkowskiEngine#591)."""
    voxels = voxelize(torch.zeros(0, 3), VOXEL_SIZE)
    with pytest.raises(ValueError, match="a sparse batch of 1 samples has no voxel"):
        collate_sparse([(voxels, torch.zeros(0, 3))]).sparse_tensor()


EMBED_EMPTY_CLOUD = """
import numpy as np
from pix2point.models.backbone import BackboneSpec, build_backbone, embed_points
spec = BackboneSpec("tiny", "rgb", 0.05)
embed_points(build_backbone(spec), spec, np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8))
"""


def test_embedding_an_empty_cloud_is_an_error_not_a_crash():
    """In a child process: without the check, MinkowskiEngine kills its process with SIGSEGV (exit -11)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}  # the package as this process imports it
    child = subprocess.run([sys.executable, "-c", EMBED_EMPTY_CLOUD], capture_output=True, text=True, env=env)
    assert child.returncode == 1, (child.returncode, child.stderr[-2000:])
    assert "ValueError: a sparse batch of 1 samples has no voxel" in child.stderr
