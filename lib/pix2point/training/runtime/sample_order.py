"""Which samples each worker trains on at each step: a pure function of (seed, step, rank).

Epochs are seeded permutations of the N samples; a step takes the next `global_batch` positions of its
epoch's permutation and the epoch's last partial batch is dropped, so no sample appears twice in one step's
global batch (a repeated frame would be its own false negative under InfoNCE). Rank r of `world` takes the
r-th of `world` equal slices. A split smaller than a global batch (toy data) still gives each worker
distinct samples, drawn per (seed, step, rank), since each worker's InfoNCE takes its negatives from its own
share; workers may then share a sample. Because nothing depends on earlier steps, a run resumed at step s reads the
same samples from step s on as a run that never stopped. PPKT's 2D flip is drawn the same way, per sample.
"""

from __future__ import annotations

import numpy as np


def steps_per_epoch(num_samples: int, global_batch: int) -> int:
    if num_samples < global_batch:
        raise ValueError(f"a batch of {global_batch} distinct samples needs at least that many samples; the "
                         f"training split has {num_samples}")
    return num_samples // global_batch


def step_samples(seed: int, step: int, num_samples: int, global_batch: int) -> np.ndarray:
    """[global_batch] distinct sample indices of `step` (0-based), over all workers."""
    per_epoch = steps_per_epoch(num_samples, global_batch)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(num_samples)
    return order[position * global_batch:(position + 1) * global_batch]


def rank_samples(seed: int, step: int, rank: int, world: int, per_rank: int, num_samples: int) -> np.ndarray:
    """[per_rank] distinct sample indices rank `rank` of `world` trains on at `step`."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world} workers")
    if per_rank <= num_samples < per_rank * world:
        return np.random.default_rng([seed, step, rank, 2]).choice(num_samples, per_rank, replace=False)
    return step_samples(seed, step, num_samples, per_rank * world)[rank * per_rank:(rank + 1) * per_rank]


FLIP_PROBABILITY = 0.5  # SLidR utils/transforms.py FlipHorizontal


def rank_flips(seed: int, step: int, rank: int, per_rank: int) -> np.ndarray:
    """[per_rank] bool: which of rank `rank`'s samples at `step` are seen mirrored (PPKT's 2D flip)."""
    return np.random.default_rng([seed, step, rank, 1]).random(per_rank) < FLIP_PROBABILITY
