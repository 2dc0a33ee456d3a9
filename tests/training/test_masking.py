"""Random and 2D-guided masking of the coarsest tokens, and its propagation to finer scales."""

import numpy as np
import pytest
import torch

from pix2point.models.point_groups import group_hierarchy
from pix2point.models.view_teachers import sum_to_one_per_image
from pix2point.training.i2p_mae_data import min_max_per_view
from pix2point.training.pretraining.masking import guided_visible, keep_count, propagate_visible, random_visible


def test_both_maskings_keep_the_same_count_per_cloud():
    generator = torch.Generator().manual_seed(0)
    assert keep_count(64, 0.8) == 13  # the original masks int(0.8 * 64) = 51
    assert random_visible(5, 64, 0.8, generator).sum(1).tolist() == [13] * 5
    assert guided_visible(torch.rand(5, 64), 0.8, generator).sum(1).tolist() == [13] * 5


def test_guided_masking_keeps_the_most_salient_tokens_visible_more_often_than_random_masking():
    draws, tokens = 2000, 32
    saliency = torch.linspace(0, 1, tokens).repeat(draws, 1)  # as views2d stores it: scaled to [0, 1]
    generator = torch.Generator().manual_seed(0)
    guided = guided_visible(saliency, 0.8, generator).float().mean(0)
    random = random_visible(draws, tokens, 0.8, generator).float().mean(0)
    top, bottom = slice(-4, None), slice(0, 4)
    assert guided[top].mean() > 1.3 * random[top].mean()
    assert guided[bottom].mean() < 0.8 * random[bottom].mean()
    # random masking does not care: every token is visible about keep/tokens of the time
    np.testing.assert_allclose(random.numpy(), keep_count(tokens, 0.8) / tokens, atol=0.05)
    # a lower temperature sharpens the guidance
    sharp = guided_visible(saliency, 0.8, generator, temperature=0.1).float().mean(0)
    assert sharp[top].mean() > guided[top].mean()


def test_visibility_propagates_to_exactly_the_groups_of_visible_coarse_tokens():
    xyz = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 400, 3)).astype(np.float32))
    sizes = (64, 32, 8)
    hierarchy = group_hierarchy(xyz, sizes, (16, 8, 4))
    top = random_visible(2, 8, 0.75, torch.Generator().manual_seed(1))
    visible = propagate_visible(top, hierarchy.neighbours, list(sizes))
    assert [v.shape[1] for v in visible] == list(sizes) and visible[2] is top
    for level in (2, 1):
        for b in range(2):
            groups = hierarchy.neighbours[level][b]
            expected = set(groups[visible[level][b]].flatten().tolist())
            assert set(np.flatnonzero(visible[level - 1][b].numpy()).tolist()) == expected
    assert 0 < visible[0].sum() < visible[0].numel()


def test_the_references_saliency_distribution_is_near_uniform_and_min_max_is_sharper():
    # views2d's CNN saliency: each view's 7 x 7 energy map divided by its sum (a distribution over cells, as
    # CLIP's attention probabilities in I2P-MAE), read at 64 token centres; I2P-MAE softmaxes the views' mean.
    rng = np.random.default_rng(0)
    energy = torch.from_numpy(rng.gamma(0.5, size=(3, 7, 7)).astype(np.float32))
    maps = sum_to_one_per_image(energy).flatten(1).numpy()
    cells = rng.integers(0, 49, 64)
    views = maps[:, cells][None]  # [1 object, 3 views, 64 tokens]
    reference = torch.softmax(torch.from_numpy(views.mean(axis=1)), dim=1)[0]
    sharper = torch.softmax(torch.from_numpy(min_max_per_view(views).mean(axis=1)), dim=1)[0]
    assert reference.max() / reference.min() < 1.3  # close to uniform, as the reference's softmax
    assert sharper.max() / sharper.min() > 1.5
    assert min_max_per_view(views).min() == 0 and min_max_per_view(views).max(axis=2).min() == pytest.approx(1)
