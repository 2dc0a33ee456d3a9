"""FIP (finetuning image-pretrained): which parts of an inflated network train (Image2Point core/builder.py
`freeze_parameter` and core/trainers.py `fix_bn_mean_var`).

    io    only the new input and output layers train; the inflated trunk is frozen, its BatchNorms included,
          and runs fully in inference mode: its BatchNorms use (and keep) their running statistics and its
          blocks' drop-connect is off, so the frozen trunk is one fixed function of its input, as the
          reference's frozen ResNet trunk is (it has no drop-connect; fix_bn_mean_var puts its BNs in eval)
    iobn  the trunk's BatchNorms also train (affine weights and running statistics); its convs stay frozen
    all   everything trains

One rule ties the modes to train/eval modes: a module whose parameters (its submodules' included) are all
frozen runs in eval mode. For a BatchNorm that is the reference's rule (frozen affine weights, frozen
statistics); for a frozen block it turns drop-connect off. FipModule.train() applies it, so the usual
model.train() call is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from pix2point.models.classifier_spec import FIP_MODES, FipMode  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class FipSummary:
    """Parameter counts (scalars, not tensors) after applying a mode, and how many BatchNorms are frozen."""

    mode: str
    trainable: int
    frozen: int
    frozen_batchnorms: int


def apply_fip(model: nn.Module, trunk: nn.Module, mode: FipMode) -> FipSummary:
    """Set which parameters of `model` train under `mode`; `trunk` is its inflated part (a submodule)."""
    if mode not in FIP_MODES:
        raise ValueError(f"unknown FIP mode {mode!r}; known: {', '.join(FIP_MODES)}")
    if not any(module is trunk for module in model.modules()):
        raise ValueError("the trunk to freeze is not a submodule of the model")
    model.requires_grad_(True)
    if mode == "io":
        trunk.requires_grad_(False)
    elif mode == "iobn":
        for module in trunk.modules():
            if not isinstance(module, _BatchNorm):
                for parameter in module.parameters(recurse=False):
                    parameter.requires_grad_(False)
    if model.training:
        keep_frozen_parts_in_eval(model)
    return _summary(model, mode)


def keep_frozen_parts_in_eval(model: nn.Module) -> None:
    """Put every module whose parameters, its submodules' included, are all frozen in eval mode (call after
    model.train()): a BatchNorm with frozen affine weights, a frozen block (no drop-connect), a frozen trunk."""
    for module in model.modules():
        if _fully_frozen(module):
            module.eval()


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimiser should get under the current FIP mode."""
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


class FipModule(nn.Module):
    """A module whose train() leaves its frozen parts in eval mode (see keep_frozen_parts_in_eval)."""

    def train(self, mode: bool = True) -> FipModule:
        super().train(mode)
        if mode:
            keep_frozen_parts_in_eval(self)
        return self


def _fully_frozen(module: nn.Module) -> bool:
    parameters = list(module.parameters())
    return bool(parameters) and not any(parameter.requires_grad for parameter in parameters)


def _has_frozen_affine(module: nn.Module) -> bool:
    if not isinstance(module, _BatchNorm):
        return False
    parameters = list(module.parameters(recurse=False))
    return bool(parameters) and not any(parameter.requires_grad for parameter in parameters)


def _summary(model: nn.Module, mode: str) -> FipSummary:
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    total = sum(parameter.numel() for parameter in model.parameters())
    frozen_batchnorms = sum(_has_frozen_affine(module) for module in model.modules())
    return FipSummary(mode=mode, trainable=trainable, frozen=total - trainable, frozen_batchnorms=frozen_batchnorms)
