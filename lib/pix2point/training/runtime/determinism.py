"""Reproducible training on CPU: per-step random streams (always) and the `deterministic` switch.

Where two runs of the same stage with the same params differed before (evidence in
docs/reproducibility.md):

1. MinkowskiEngine's CPU kernel maps are filled by OpenMP threads that claim slots with an atomic counter
   (src/coordinate_map_cpu.hpp, `kernel_map`), so the order of a kernel offset's (input, output) pairs
   depends on thread timing; a convolution's weight gradient is a gemm summing over those pairs in that
   order (src/convolution_kernel.hpp), so it differs in the last bits from run to run and training drifts.
   Every new coordinate manager also sets OpenMP to min(cpu_count, 20) threads, whatever the worker got.
   -> `sparse_tensor` (models/voxelize.py) gives each tensor a manager that uses torch's thread count;
   `configure(True)` makes that 1, and one thread fills the maps in one order.
2. torch splits CPU reductions by its thread count, and OpenBLAS (MinkowskiEngine's gemms) its products
   by its own thread count (OMP_NUM_THREADS, which Ray sets to the worker's CPUs), so results depend on the
   worker's CPUs. -> `configure(True)`: one thread everywhere and torch's deterministic algorithms.
3. Random streams that ran on across steps (numpy Generators, the torch global RNG that dropout and stochastic
   depth draw from, I2P-MAE's masking generator) are not in checkpoints: a resumed run drew other numbers
   than one that was never stopped. -> `step_streams` derives all of them from (seed, rank, step), in both
   modes, so a step's randomness does not depend on what ran before it in the process.

What deterministic mode does not promise: the same bits on another CPU model, BLAS or torch build.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits


def configure(deterministic: bool) -> None:
    """Call first in a training worker. On: one thread for torch, OpenMP (so MinkowskiEngine, see
    `sparse_tensor` in models/voxelize.py) and every BLAS loaded (MinkowskiEngine's gemms run on OpenBLAS,
    whose pthreads ignore torch's setting), and torch's deterministic algorithms (on a GPU: warn-only, see
    below). Off: the worker's defaults."""
    if deterministic:
        torch.set_num_threads(1)
        threadpool_limits(limits=1)
    if deterministic and torch.cuda.is_available():
        # cuBLAS needs this workspace to be deterministic; torch ops without a deterministic CUDA kernel only
        # warn, since MinkowskiEngine's CUDA kernels accumulate with atomics anyway: GPU runs are reproducible
        # in their data and random streams, not bit for bit.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        return
    torch.use_deterministic_algorithms(deterministic)


@dataclass(frozen=True)
class StepStreams:
    step: int  # the 0-based optimiser step they belong to
    numpy: np.random.Generator  # data choice and augmentation
    torch: torch.Generator  # explicit torch draws (I2P-MAE's masking)


def step_streams(seed: int, rank: int, step: int, device: torch.device = torch.device("cpu")) -> StepStreams:
    """The random streams of optimiser step `step` (0-based) on worker `rank`, derived from (seed, rank, step)
    alone; also reseeds torch's global RNG (dropout, stochastic depth) from the same key.

    Independent children of one numpy SeedSequence, so the streams are not copies of each other and a
    resumed run draws exactly what an uninterrupted one drew at that step.
    """
    numpy_key, global_key, generator_key, _ = _children(seed, rank, step)
    torch.manual_seed(_torch_seed(global_key))
    generator = torch.Generator(device).manual_seed(_torch_seed(generator_key))
    return StepStreams(step, np.random.default_rng(numpy_key), generator)


def epoch_rng(seed: int, rank: int, epoch: int) -> np.random.Generator:
    """The stream of an epoch-level draw (the data order), apart from the streams of step number `epoch`."""
    return np.random.default_rng(_children(seed, rank, epoch)[3])


def _children(seed: int, rank: int, index: int) -> list[np.random.SeedSequence]:
    """(step numpy, step torch global, step torch generator, epoch order) for key (seed, rank, index)."""
    return np.random.SeedSequence([seed, rank, index]).spawn(4)


def _torch_seed(sequence: np.random.SeedSequence) -> int:
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))  # 63 bits: torch takes signed seeds too
