"""Chamfer L2 against a brute-force numpy computation and its defining properties."""

import numpy as np
import pytest
import torch

from pix2point.training.pretraining.chamfer import chamfer_l2


def brute_force(a: np.ndarray, b: np.ndarray) -> float:
    totals = []
    for x, y in zip(a, b):
        squared = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        totals.append((squared.min(1).mean(), squared.min(0).mean()))
    forward, backward = np.array(totals).mean(0)
    return forward + backward


def test_chamfer_matches_brute_force_with_unequal_set_sizes():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 8, 3)), rng.normal(size=(5, 11, 3))
    value = chamfer_l2(torch.from_numpy(a), torch.from_numpy(b))
    assert value.item() == pytest.approx(brute_force(a, b), rel=1e-10)


def test_chamfer_is_zero_for_a_permuted_copy_and_symmetric():
    rng = np.random.default_rng(1)
    a = torch.from_numpy(rng.normal(size=(3, 8, 3)))
    assert chamfer_l2(a, a[:, torch.randperm(8)]).item() == pytest.approx(0.0, abs=1e-12)
    b = torch.from_numpy(rng.normal(size=(3, 6, 3)))
    assert chamfer_l2(a, b).item() == pytest.approx(chamfer_l2(b, a).item())


def test_chamfer_gradient_is_finite_where_points_coincide():
    target = torch.zeros(1, 2, 3)
    predicted = torch.zeros(1, 2, 3, requires_grad=True)
    chamfer_l2(predicted, target).backward()
    assert torch.isfinite(predicted.grad).all()
