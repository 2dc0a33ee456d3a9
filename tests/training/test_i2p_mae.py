"""I2P-MAE's model and losses without Ray: the 2D targets come from the right points, the encoder never sees
masked tokens, and a few optimiser steps lower both losses on a fixed batch."""

import numpy as np
import pytest
import torch

from pix2point.models.point_groups import group_hierarchy
from pix2point.models.point_m2ae import HierarchicalEncoder, PointM2AESpec
from pix2point.models.transformer import DropPath
from pix2point.training.pretraining.i2p_mae import I2PMAE, feature_targets
from pix2point.training.pretraining.masking import propagate_visible, random_visible
from pix2point.training.weight_decay import weight_decay_groups

SPEC = PointM2AESpec((64, 32, 8), (16, 8, 4), (24, 48, 96), (1, 1, 1), 3, (16, 32, 64))


def clouds(batch=4, points=256, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (batch, points, 3)).astype(np.float32))


def test_feature_targets_are_the_features_of_each_visible_tokens_group_members():
    points = clouds()
    hierarchy = group_hierarchy(points, SPEC.num_groups, SPEC.group_sizes)
    seen = random_visible(4, 32, 0.5, torch.Generator().manual_seed(0))
    features = torch.cat([points, -points], dim=-1).half()  # a point's "features": its own coordinates
    targets = feature_targets(features, hierarchy, 1, seen)
    members = (hierarchy.members(1) + hierarchy.centres[1][:, :, None])[seen]  # absolute coordinates
    assert targets.shape == (int(seen.sum()), 8, 6)
    torch.testing.assert_close(targets[..., :3], members, atol=1e-3, rtol=1e-3)  # float16 round trip


def test_encoder_output_does_not_depend_on_masked_tokens():
    torch.manual_seed(0)
    encoder = HierarchicalEncoder(SPEC).eval()
    points = clouds(batch=2)
    hierarchy = group_hierarchy(points, SPEC.num_groups, SPEC.group_sizes)
    visible = propagate_visible(random_visible(2, 8, 0.75, torch.Generator().manual_seed(3)), hierarchy.neighbours,
                                list(SPEC.num_groups))
    moved = points.clone()
    for b in range(2):  # move only points that no visible finest token groups
        hidden = np.setdiff1d(np.arange(256), hierarchy.neighbours[0][b][visible[0][b]].numpy())
        assert len(hidden) > 0
        moved[b, hidden] += 0.05
    moved_hierarchy = type(hierarchy)(moved, hierarchy.centres, hierarchy.neighbours, hierarchy.point_index)
    with torch.no_grad():
        before, after = encoder(hierarchy, visible), encoder(moved_hierarchy, visible)
    for level_before, level_after in zip(before, after):
        torch.testing.assert_close(level_before.tokens[level_before.valid], level_after.tokens[level_after.valid])


def test_a_few_steps_lower_both_losses_on_a_fixed_batch():
    torch.manual_seed(0)
    model = I2PMAE(SPEC, (1, 1), feature_channels=6, mask_ratio=0.8, masking="guided")
    points = clouds()
    saliency, features = torch.rand(4, 256), torch.cat([points, points.square()], dim=-1).half()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def losses():
        return model(points, saliency, features, torch.Generator().manual_seed(0))

    first = losses()
    for _ in range(30):
        optimizer.zero_grad()
        losses().total.backward()
        optimizer.step()
    last = losses()
    assert last.chamfer < 0.7 * first.chamfer and last.feature < 0.7 * first.feature


def test_weight_decay_spares_biases_norms_and_the_mask_token_as_the_references_add_weight_decay():
    model = I2PMAE(SPEC, (1, 1), feature_channels=6, mask_ratio=0.8, masking="random")
    spared, decayed = weight_decay_groups(model, 0.05)
    assert (spared["weight_decay"], decayed["weight_decay"]) == (0.0, 0.05)
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    spared_names = {names[id(p)] for p in spared["params"]}
    assert "decoder.mask_token" in spared_names
    assert {name for name, p in model.named_parameters() if name.endswith(".bias") or p.ndim == 1} <= spared_names
    assert any(".norm1.weight" in name for name in spared_names)
    assert all(p.ndim == 2 for p in decayed["params"]) and len(decayed["params"]) > 0
    assert len(spared["params"]) + len(decayed["params"]) == len(list(model.parameters()))


def test_drop_path_rises_linearly_to_its_rate_over_the_encoders_blocks_and_drops_whole_samples():
    spec = PointM2AESpec((64, 32, 8), (16, 8, 4), (24, 48, 96), (2, 2, 1), 3, (16, 32, 64))
    encoder = HierarchicalEncoder(spec, drop_path_rate=0.1)
    rates = [block.drop_path.rate for stack in encoder.stacks for block in stack.blocks]
    np.testing.assert_allclose(rates, [0.0, 0.025, 0.05, 0.075, 0.1], atol=1e-7)
    drop = DropPath(0.5).train()
    branch = torch.ones(400, 5, 7)
    out = drop(branch)
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}  # each sample all dropped or all kept, kept x 1/(1-p)
    assert (per_sample == 0).all(1).float().mean().item() == pytest.approx(0.5, abs=0.08)
    assert torch.equal(drop.eval()(branch), branch)


def test_a_mask_ratio_that_masks_no_token_is_refused_not_a_nan_loss():
    """int(0.1 * 8) = 0 coarsest tokens masked: the Chamfer loss would be a mean over no token, NaN at every step."""
    with pytest.raises(ValueError, match=r"mask_ratio 0.1 masks none of the 8 coarsest tokens"):
        I2PMAE(SPEC, (1, 1), feature_channels=None, mask_ratio=0.1, masking="random")
    model = I2PMAE(SPEC, (1, 1), feature_channels=None, mask_ratio=0.125, masking="random")  # masks one of 8
    assert torch.isfinite(model(clouds(), None, None, torch.Generator().manual_seed(0)).total)
