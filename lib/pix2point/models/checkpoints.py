"""Reading teacher weights from a file, and copying them into a network only when they fit it exactly."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

# MoCo (facebookresearch/moco) saves the DataParallel-wrapped query encoder under this prefix, beside the
# momentum encoder and the queue, which a teacher does not use.
MOCO_QUERY_ENCODER_PREFIX = "module.encoder_q."

# BatchNorm's update counter plays no part in a frozen forward pass, and older torchvision files lack it.
_IGNORED_SUFFIX = "num_batches_tracked"


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a state-dict file: a plain (torchvision-style) state dict, or a checkpoint holding one
    under 'state_dict'; a MoCo checkpoint is reduced to its query encoder with the prefix stripped."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"teacher weights file {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several unrelated types for a file that is not a checkpoint
        raise ValueError(f"teacher weights file {path} is not a readable torch checkpoint: {error}") from error
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"teacher weights file {path} holds a {type(checkpoint).__name__}, not a state dict")
    if any(key.startswith(MOCO_QUERY_ENCODER_PREFIX) for key in state):
        state = {key.removeprefix(MOCO_QUERY_ENCODER_PREFIX): value
                 for key, value in state.items() if key.startswith(MOCO_QUERY_ENCODER_PREFIX)}
    not_tensors = sorted(key for key, value in state.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise ValueError(f"teacher weights file {path}: entries that are not tensors: {_listing(not_tensors)}")
    return state


def load_fitting_weights(model: nn.Module, model_name: str, state: dict[str, torch.Tensor], path: Path,
                         ignored_prefixes: tuple[str, ...] = (), source: str = "teacher weights file") -> None:
    """Copy `state` (read from `path`, a `source`) into `model`; keys under `ignored_prefixes` (e.g. a classifier
    the caller drops) are skipped. Every other key must match the model's in name and shape, else a ValueError
    names the file, the model and the keys."""
    expected = _shapes(model.state_dict().items(), ignored_prefixes)
    given = _shapes(state.items(), ignored_prefixes)
    problems = []
    if missing := sorted(expected.keys() - given.keys()):
        problems.append(f"missing keys {_listing(missing)}")
    if unexpected := sorted(given.keys() - expected.keys()):
        problems.append(f"unexpected keys {_listing(unexpected)}")
    if misshapen := [f"{key} {given[key]} in file vs {expected[key]} in model"
                     for key in sorted(expected.keys() & given.keys()) if given[key] != expected[key]]:
        problems.append(f"misshapen keys {_listing(misshapen)}")
    if problems:
        raise ValueError(f"{source} {path} does not fit {model_name}: " + "; ".join(problems))
    model.load_state_dict({key: state[key] for key in given}, strict=False)


def _shapes(items: Iterable[tuple[str, torch.Tensor]], ignored_prefixes: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    return {
        key: tuple(value.shape) for key, value in items
        if not key.endswith(_IGNORED_SUFFIX) and not key.startswith(ignored_prefixes)
    }


def _listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}, ... {len(keys) - limit} more]" if len(keys) > limit else f"[{shown}]"
