"""training/runtime/device.to_device: a step's whole batch to the model's device in one call (issue 25.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import pytest
import torch

from pix2point.training.runtime.device import to_device
from pix2point.training.finetuning.fewshot import episode_device
from pix2point.models.voxelize import SparseBatch

META = torch.device("meta")  # a real torch device on every machine: tensors moved there have no data


class Pair(NamedTuple):
    first: torch.Tensor
    second: torch.Tensor | None


@dataclass(frozen=True)
class Batch:
    sparse: SparseBatch
    pairs: list[Pair]
    extra: dict[str, torch.Tensor]
    image_size: tuple[int, int]


def test_every_tensor_at_any_depth_moves_and_nothing_else_changes():
    ones = torch.ones(2)
    sparse = SparseBatch(torch.zeros(3, 4, dtype=torch.int32), ones, ones, ones, ones)
    batch = Batch(sparse, [Pair(ones, None)], {"u": ones}, (640, 480))
    moved = to_device(batch, META)
    assert type(moved) is Batch and type(moved.sparse) is SparseBatch and type(moved.pairs[0]) is Pair
    tensors = [moved.sparse.coordinates, moved.sparse.features, moved.pairs[0].first, moved.extra["u"]]
    assert all(tensor.is_meta for tensor in tensors)
    assert moved.sparse.coordinates.dtype == torch.int32 and moved.pairs[0].second is None
    assert moved.image_size == (640, 480)
    assert not batch.sparse.features.is_meta  # the CPU batch is left as it was


def test_a_gpu_asked_for_where_torch_sees_none_is_an_error_not_a_cpu_run():
    assert episode_device(False) == torch.device("cpu")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="gpus_per_episode > 0 but torch sees no CUDA device"):
        episode_device(True)
