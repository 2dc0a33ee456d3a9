"""FIP modes on the inflated EfficientNet-Lite0: what one optimiser step may and may not change."""

from __future__ import annotations

import MinkowskiEngine as ME
import pytest
import torch
from torch import nn

from pix2point.models.efficientnet_lite import load_efficientnet_lite0
from pix2point.models.fip import apply_fip, trainable_parameters
from pix2point.models.inflated_efficientnet import SparseEfficientNet, inflate_efficientnet, sparse_efficientnet_like

OBJECTS, POINTS, VOXEL, CLASSES = 3, 400, 0.1, 5


@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    return load_efficientnet_lite0()


@pytest.fixture()
def model(lite0) -> SparseEfficientNet:
    torch.manual_seed(0)
    model3d = sparse_efficientnet_like(lite0, in_channels=3, num_classes=CLASSES)
    inflate_efficientnet(lite0, model3d)
    return model3d


def sphere_objects(generator: torch.Generator) -> ME.SparseTensor:
    """Points on ellipsoids inside the unit sphere, voxelised, with xyz as features."""
    coordinates, features = [], []
    for _ in range(OBJECTS):
        directions = torch.nn.functional.normalize(torch.randn(POINTS, 3, generator=generator), dim=1)
        points = directions * (0.4 + 0.6 * torch.rand(3, generator=generator))
        voxels, unique_points = ME.utils.sparse_quantize(points / VOXEL, features=points)
        coordinates.append(voxels)
        features.append(unique_points * VOXEL)
    return ME.SparseTensor(torch.cat(features).float(), ME.utils.batched_coordinates(coordinates))


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def one_step(model: SparseEfficientNet, mode: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """State before and after one SGD step under `mode` (no weight decay, so only a gradient changes a weight)."""
    apply_fip(model, model.trunk, mode)
    model.train()
    generator = torch.Generator().manual_seed(1)
    batch, labels = sphere_objects(generator), torch.randint(0, CLASSES, (OBJECTS,), generator=generator)
    optimiser = torch.optim.SGD(trainable_parameters(model), lr=0.1, momentum=0.9)
    before = snapshot(model)
    nn.functional.cross_entropy(model(batch), labels).backward()
    optimiser.step()
    return before, snapshot(model)


def changed(before: dict, after: dict, keep) -> dict[str, bool]:
    return {name: not torch.equal(before[name], after[name]) for name in before if keep(name)}


def is_trunk_conv(name: str) -> bool:
    return name.startswith("trunk.") and name.endswith(".kernel")


def is_trunk_batchnorm(name: str, tensor: str) -> bool:
    return name.startswith("trunk.") and name.endswith(f".bn.{tensor}")


def is_new_layer(name: str) -> bool:
    return name.startswith(("stem.", "classifier.")) and not name.endswith("num_batches_tracked")


def test_io_changes_only_the_new_layers(model):
    before, after = one_step(model, "io")
    trunk = changed(before, after, lambda name: name.startswith("trunk."))
    assert trunk and not any(trunk.values()), [name for name, moved in trunk.items() if moved]
    assert all(changed(before, after, is_new_layer).values())


def test_iobn_trains_batchnorm_but_not_the_inflated_convs(model):
    before, after = one_step(model, "iobn")
    assert not any(changed(before, after, is_trunk_conv).values())
    # A BN bias feeding only 1x1 convs and train-mode BNs gets a zero gradient (their mean subtraction removes
    # any constant shift), so biases are checked for taking part in the step rather than for moving.
    for tensor in ("weight", "running_mean", "running_var"):
        assert all(changed(before, after, lambda name: is_trunk_batchnorm(name, tensor)).values()), tensor
    biases = [parameter for name, parameter in model.named_parameters() if is_trunk_batchnorm(name, "bias")]
    assert biases and all(bias.grad is not None for bias in biases)
    assert all(changed(before, after, is_new_layer).values())


def test_all_trains_everything(model):
    before, after = one_step(model, "all")
    assert all(changed(before, after, is_trunk_conv).values())
    assert all(changed(before, after, lambda name: is_trunk_batchnorm(name, "running_mean")).values())
    assert all(changed(before, after, is_new_layer).values())


@pytest.mark.parametrize(("mode", "trunk_batchnorms_train"), [("io", False), ("iobn", True), ("all", True)])
def test_model_train_keeps_frozen_batchnorms_in_eval(model, mode, trunk_batchnorms_train):
    apply_fip(model, model.trunk, mode)
    model.eval()
    model.train()
    trunk_norms = [module for module in model.trunk.modules() if isinstance(module, nn.BatchNorm1d)]
    assert trunk_norms and all(norm.training == trunk_batchnorms_train for norm in trunk_norms)
    assert model.stem.norm.bn.training and model.classifier.training


@pytest.mark.parametrize(("mode", "trunk_in_inference_mode"), [("io", True), ("iobn", False), ("all", False)])
def test_under_io_the_frozen_trunk_runs_fully_in_inference_mode_without_drop_connect(model, mode, trunk_in_inference_mode):
    apply_fip(model, model.trunk, mode)
    model.train()
    blocks = [block for block in model.trunk if getattr(block, "drop_connect_rate", 0) > 0]
    assert blocks and all(block.training != trunk_in_inference_mode for block in blocks)
    assert model.stem.training and model.classifier.training  # the new layers train in every mode
    # Drop-connect zeroes a random share of each object's residual branches in training mode: under io the
    # trunk's features are one fixed function of the input, whatever the random state.
    batch = sphere_objects(torch.Generator().manual_seed(2))
    with torch.no_grad():
        first, second = model.features(batch), model.features(batch)
    assert torch.equal(first, second) == trunk_in_inference_mode


def test_io_trains_far_fewer_parameters_than_all(model):
    io, everything = apply_fip(model, model.trunk, "io"), apply_fip(model, model.trunk, "all")
    assert everything.frozen == 0 and everything.frozen_batchnorms == 0
    new_layers = sum(p.numel() for p in (*model.stem.parameters(), *model.classifier.parameters()))
    trunk_norms = sum(isinstance(module, ME.MinkowskiBatchNorm) for module in model.trunk.modules())
    assert (io.trainable, io.frozen_batchnorms) == (new_layers, trunk_norms)
    assert io.trainable + io.frozen == everything.trainable and io.trainable < everything.trainable / 100


def test_an_unknown_mode_or_a_foreign_trunk_is_an_error(model):
    with pytest.raises(ValueError, match="unknown FIP mode 'ioms'"):
        apply_fip(model, model.trunk, "ioms")
    with pytest.raises(ValueError, match="not a submodule"):
        apply_fip(model, nn.Linear(2, 2), "io")
