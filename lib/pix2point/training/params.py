"""Param groups shared by the training stages; a stage's Params inherits them, so its keys stay flat."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # augment needs scipy, which loading the pipeline (and `pix2point status`) should not import
    from pix2point.training.augment import PointAugmentation

# How I2P-MAE picks the visible tokens (training/masking.py): by 2D saliency, or at random as plain MAE.
Masking = Literal["guided", "random"]
# I2P-MAE's 2D-guided masking distribution: see training/i2p_mae_data.py.
SaliencyDistribution = Literal["reference", "min_max"]


class SGDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(0.1, gt=0)  # cosine-annealed to 0 over the steps
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)


class PointAugmentationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rotate_up: bool = True
    scale_range: tuple[float, float] = (0.9, 1.1)
    elastic: bool = False

    def point_augmentation(self) -> PointAugmentation:
        from pix2point.training.augment import PointAugmentation

        return PointAugmentation(self.rotate_up, self.scale_range, self.elastic)


class RayTrainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_workers: int = Field(1, ge=1)  # Ray Train workers (DDP)
    cpus_per_worker: int = Field(1, ge=1)
    use_gpu: bool = False
    checkpoint_every: int = Field(100, ge=1)  # steps between checkpoints a killed run resumes from
    # Bit-identical reruns on one machine: one thread per worker, torch's deterministic algorithms
    # (training/determinism.py; the cost is in bench/determinism.py). Off: faster, with run-to-run drift.
    deterministic: bool = False


class RunGridParams(RayTrainParams):
    """A stage that trains a grid of runs, each its own Ray Train run (training/trials.py)."""

    # Runs trained at once; None: as many as the cluster's CPUs (GPUs with use_gpu) hold, each run taking
    # num_workers x cpus_per_worker. Results do not depend on it (each run is seeded on its own).
    max_concurrent_runs: int | None = Field(None, ge=1)

    def run_grid_scaling(self) -> dict:
        """The keyword arguments of training/trials.fit_runs that these params set."""
        return {"num_workers": self.num_workers, "cpus_per_worker": self.cpus_per_worker, "use_gpu": self.use_gpu,
                "max_concurrent": self.max_concurrent_runs, "deterministic": self.deterministic}


class AdamWParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(1e-3, gt=0)  # peak; linear warm-up from 0, then cosine-annealed to 0
    weight_decay: float = Field(0.05, ge=0)
    warmup_steps: int = Field(0, ge=0)
