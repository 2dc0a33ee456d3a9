"""Param groups shared by the training stages; a stage's Params inherits them, so its keys stay flat."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # augment needs scipy, which loading the pipeline (and `pix2point status`) should not import
    from pix2point.training.augment import PointAugmentation

# How I2P-MAE picks the visible tokens (training/pretraining/masking.py): by 2D saliency, or at random as plain MAE.
Masking = Literal["guided", "random"]
# I2P-MAE's 2D-guided masking distribution: see training/i2p_mae_data.py.
SaliencyDistribution = Literal["reference", "min_max"]


class SGDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(0.1, gt=0)  # cosine-annealed to 0 over the steps
    momentum: float = Field(0.9, ge=0, lt=1)  # SGD momentum; SLidR/PPKT and Image2Point: 0.9
    weight_decay: float = Field(1e-4, ge=0)  # SGD's L2 weight decay; SLidR/PPKT and Image2Point: 1e-4


class PointAugmentationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rotate_up: bool = True  # rotate each cloud by a uniform random angle about z, the up axis; off: no rotation
    scale_range: tuple[float, float] = (0.9, 1.1)  # isotropic scale factor drawn uniformly in [lo, hi]; [1, 1]: none
    elastic: bool = False  # PointContrast's elastic distortion, grids 0.2 and 0.8 m, magnitudes 0.4 and 1.6 m

    def point_augmentation(self) -> PointAugmentation:
        from pix2point.training.augment import PointAugmentation

        return PointAugmentation(self.rotate_up, self.scale_range, self.elastic)


class RayTrainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_workers: int = Field(1, ge=1)  # Ray Train workers (DDP)
    cpus_per_worker: int = Field(1, ge=1)  # CPUs Ray reserves for each Train worker (its torch threads)
    # One GPU per Ray Train worker; auto: when the Ray cluster has GPUs (as a CUDA install's does), else CPU only
    use_gpu: bool | Literal["auto"] = "auto"
    checkpoint_every: int = Field(100, ge=1)  # steps between checkpoints a killed run resumes from
    # Bit-identical reruns on one machine: one thread per worker, torch's deterministic algorithms
    # (training/runtime/determinism.py). On by default: on CPU one thread a worker was also the fastest setting
    # (bench/determinism_steps.py --threads), and a 2-core machine then trains two runs at once. Off: the
    # worker's cpus_per_worker threads (or a GPU's fast non-deterministic kernels), with run-to-run drift.
    deterministic: bool = True


class RunGridParams(RayTrainParams):
    """A stage that trains a grid of runs, in as many trainers at once as the cluster holds (training/runtime/trials.py)."""

    # Runs trained at once (each concurrency slot one trainer that trains its runs one after another); None: as
    # many as the cluster's CPUs (GPUs with use_gpu) hold, each run taking num_workers x cpus_per_worker.
    # Results do not depend on it (each run is seeded on its own).
    max_concurrent_runs: int | None = Field(None, ge=1)

    def run_grid_scaling(self) -> dict:
        """The keyword arguments of training/runtime/trials.fit_runs that these params set."""
        return {"num_workers": self.num_workers, "cpus_per_worker": self.cpus_per_worker, "use_gpu": self.use_gpu,
                "max_concurrent": self.max_concurrent_runs, "deterministic": self.deterministic}


class AdamWParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(1e-3, gt=0)  # peak; linear warm-up from 0, then cosine-annealed to 0
    # AdamW's decoupled decay, on weight matrices only; I2P-MAE/Point-M2AE: 0.05
    weight_decay: float = Field(0.05, ge=0)
    warmup_steps: int = Field(0, ge=0)  # steps of linear learning-rate warm-up from 0 (I2P-MAE: 10 epochs); 0: none


Config = TypeVar("Config")


def config_from_params(config_type: type[Config], params: BaseModel, **derived: Any) -> Config:
    """The training config `config_type` (a dataclass the Ray Train workers receive, so picklable) of a stage's
    `params`, without copying each param by hand: every field named as a param of `params` takes that param's
    value; `derived` gives the rest (paths, specs, the runs, a value built from params) and overrides a param of
    the same name whose config value is derived from it (pretrain's per-worker `num_pairs`).

    A config field neither gives is a TypeError naming it (the dataclass's own), unless it has a default."""
    names = {field.name for field in fields(config_type)}
    taken = {name: getattr(params, name) for name in names & type(params).model_fields.keys() if name not in derived}
    return config_type(**taken, **derived)
