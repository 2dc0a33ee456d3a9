"""A stage's training config is built from its Params by field name, never copied param by param."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import pytest
from pydantic import BaseModel

from pix2point.training.param_groups import config_from_params


class StageParams(BaseModel):
    steps: int = 10
    num_pairs: int = 64  # over all workers
    num_workers: int = 2
    seed: int = 3


@dataclass(frozen=True)
class WorkerConfig:
    out: str
    steps: int
    num_pairs: int  # per worker
    seed: int = 0


def test_fields_named_as_params_take_their_values_and_derived_values_win():
    params = StageParams()
    config = config_from_params(WorkerConfig, params, out="o", num_pairs=params.num_pairs // params.num_workers)
    assert config == WorkerConfig(out="o", steps=10, num_pairs=32, seed=3)
    assert pickle.loads(pickle.dumps(config)) == config  # what Ray Train ships to its workers


def test_a_field_neither_params_nor_derived_give_is_an_error_naming_it():
    with pytest.raises(TypeError, match="out"):
        config_from_params(WorkerConfig, StageParams())
