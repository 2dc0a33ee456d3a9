"""Farthest point sampling, kNN grouping and the multi-scale token hierarchy against direct computations."""

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from pix2point.models.point_groups import (
    farthest_point_sample, gather, group_hierarchy, knn, scatter_rows, visible_first,
)


def clouds(batch=3, points=500, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (batch, points, 3)).astype(np.float32))


def test_farthest_point_sample_matches_the_greedy_definition_and_spreads_points():
    xyz = clouds()
    chosen = farthest_point_sample(xyz, 32)
    for cloud, picks in zip(xyz.numpy(), chosen.numpy()):
        assert len(set(picks)) == 32 and picks[0] == 0
        for i in range(1, 32):  # each pick is the point farthest from those picked before it
            nearest = cdist(cloud, cloud[picks[:i]]).min(1)
            assert nearest[picks[i]] == pytest.approx(nearest.max(), rel=1e-5)
        # well spread: the picks' smallest pairwise distance beats that of any random 32 points by far
        spread = cdist(cloud[picks], cloud[picks])[np.triu_indices(32, 1)].min()
        random = np.random.default_rng(1).choice(len(cloud), 32, replace=False)
        assert spread > 2 * cdist(cloud[random], cloud[random])[np.triu_indices(32, 1)].min()


def test_knn_matches_cKDTree():
    xyz, query = clouds(seed=2), clouds(points=40, seed=3)
    squared, index = knn(query, xyz, 8)
    for b in range(len(xyz)):
        distances, expected = cKDTree(xyz[b].numpy()).query(query[b].numpy(), k=8)
        np.testing.assert_array_equal(index[b].numpy(), expected)
        np.testing.assert_allclose(squared[b].numpy(), distances ** 2, rtol=1e-5, atol=1e-7)


def test_hierarchy_levels_nest_and_index_the_input_points():
    xyz = clouds(points=256)
    hierarchy = group_hierarchy(xyz, (64, 32, 8), (16, 8, 4))
    assert [c.shape[1] for c in hierarchy.centres] == [64, 32, 8]
    assert [n.shape[2] for n in hierarchy.neighbours] == [16, 8, 4]
    for level in range(3):
        # each centre is the input point its point_index names
        torch.testing.assert_close(hierarchy.centres[level], gather(xyz, hierarchy.point_index[level]))
        below = xyz if level == 0 else hierarchy.centres[level - 1]
        members = hierarchy.members(level) + hierarchy.centres[level][:, :, None]
        torch.testing.assert_close(members, gather(below, hierarchy.neighbours[level]))
        torch.testing.assert_close(gather(xyz, hierarchy.member_points(level)), members)
    # a centre is its own nearest neighbour in the level below
    torch.testing.assert_close(hierarchy.members(1)[:, :, 0], torch.zeros(3, 32, 3))


def test_visible_first_and_scatter_rows_round_trip_with_uneven_counts():
    visible = torch.tensor([[True, False, True, False], [False, False, False, True]])
    index, valid = visible_first(visible)
    assert index.tolist()[0] == [0, 2] and index[1, 0] == 3
    assert valid.tolist() == [[True, True], [True, False]]
    full = torch.zeros(2, 4, 1)
    rows = torch.tensor([[[1.0], [2.0]], [[3.0], [9.0]]])
    written = scatter_rows(full, index, rows, valid)
    assert written[..., 0].tolist() == [[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 3.0]]  # padding row 9 not written
