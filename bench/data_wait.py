"""Data wait of PPKT's real sample stream against a GPU-speed step, the step itself SIMULATED: the training
loop reads its batch exactly as PPKT's does (training/runtime/sample_stream.SampleStream on the Ray Data datasets
stages/pretrain.py builds, the pretrain params' prefetch_batches, reader_actors and reader_cpus), decodes the
frames as PPKT's step does, then waits `step_s` seconds where the 3D network would run on the GPU. The data
path is real, the compute is not. bench/scale.py runs it on the rehearsal's artefacts.

Per step it records loss.parquet's data-path columns (StepData.costs); data wait is the seconds the loop
blocked for its batch / the step's seconds, over the steps after the first two (the first waits for the
reader actors to start). Beside it: the readers' seconds per frame measured in this process (the same
reader, no Ray), hence the reader CPUs a worker needs to keep up with a step of `step_s`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

WARM_STEPS = 2  # excluded: the reader actors start during the first steps


@dataclass(frozen=True)
class SimulatedRun:
    out: Path
    per_rank: int
    prefetch_batches: int
    steps: int
    step_s: float  # the simulated step (GPU forward + backward), seconds


@dataclass(frozen=True)
class DataWait:
    step_s: float
    reader_actors: int
    reader_cpus: float
    prefetch_batches: int
    frames: int  # per step
    fraction: float  # seconds waited / seconds of the steps, steps after WARM_STEPS
    median_wait_s: float
    p90_wait_s: float
    max_wait_s: float


def simulated_loop(run: SimulatedRun) -> None:
    """Ray Train worker loop: PPKT's data part of a step (stream, decode), then a wait standing in for the GPU."""
    import ray.train

    from pix2point.io.arrow import write_table
    from pix2point.io.samples_table import FrameSample
    from pix2point.training.runtime.sample_stream import SampleStream

    rank = ray.train.get_context().get_world_rank()
    stream = SampleStream.for_rank(rank, run.per_rank, run.prefetch_batches)
    rows = []
    for step in range(run.steps):
        started = time.perf_counter()
        data = stream.next(step)
        samples = [FrameSample.from_arrays(arrays) for arrays in data.samples]
        time.sleep(run.step_s)  # the simulated GPU step
        rows.append({"step": step + 1, "frames": len(samples), **data.costs(time.perf_counter() - started)})
    if rank == 0:
        write_table(pa.Table.from_pylist(rows), run.out / "loss.parquet")


def ppkt_stream_config(params: Any, inputs: dict[str, Path], frames: int, steps: int) -> Any:
    """PPKT's config for `inputs` as stages/pretrain.py builds it, `steps` steps of `frames` frames (fewer if
    the training split has fewer) on one worker; its `out` is unused (the simulated loop writes elsewhere)."""
    from stages.pretrain import ppkt_config

    config = dataclasses.replace(ppkt_config(params, inputs, inputs["pairs"]), steps=steps, num_workers=1)
    return dataclasses.replace(config, frames_per_batch=min(frames, len(config.stream_spec())))


def reader_seconds_per_frame(config: Any, steps: int = 3) -> float:
    """Seconds a frame costs the stream's CPUs, in this process: PPKT's targeted reads and decode, and the
    stream's own encoding into a block and decoding in the worker (not the object store's transfer)."""
    from pix2point.training.runtime.sample_stream import DirectSamples, decode_samples, encode_sample

    direct = DirectSamples(config.stream_spec(), 0)
    direct.next(0)  # opens the files, caches footers
    started = time.perf_counter()
    for step in range(1, steps + 1):
        data = direct.next(step)
        decode_samples(pa.Table.from_pylist([encode_sample(step, slot, sample, arrays, 0) for slot, (sample, arrays)
                                             in enumerate(zip(data.ids, data.samples))]))
    return (time.perf_counter() - started) / (steps * config.frames_per_batch)


def measure(config: Any, step_s: float, steps: int, reader_actors: int, reader_cpus: float, root: Path) -> DataWait:
    """One simulated run of `steps` steps of `step_s` seconds through the real stream."""
    import ray.cloudpickle

    from pix2point.training.runtime.distributed import fit
    from pix2point.training.runtime.sample_stream import trainer_data

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # bench/ is not importable on the workers
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        run = SimulatedRun(Path(tmp), config.frames_per_batch, config.prefetch_batches, steps, step_s)
        spec = dataclasses.replace(config, steps=steps).stream_spec()
        fit(simulated_loop, run, num_workers=1, cpus_per_worker=1, use_gpu=False, storage=Path(tmp), name="data_wait",
            **trainer_data(spec, 0, steps, reader_actors, reader_cpus))
        loss = pq.read_table(Path(tmp) / "loss.parquet").to_pydict()
    steady = slice(WARM_STEPS, None)
    return DataWait(step_s, reader_actors, reader_cpus, config.prefetch_batches, config.frames_per_batch,
                    float(np.sum(loss["data_wait_s"][steady]) / np.sum(loss["step_s"][steady])),
                    *(float(np.quantile(loss["data_wait_s"][steady], q)) for q in (0.5, 0.9, 1.0)))


def readers_needed(seconds_per_frame: float, frames: int, step_s: float) -> int:
    """Reader actors (a CPU each) whose reads of a step's frames take no longer than the step."""
    return max(1, math.ceil(seconds_per_frame * frames / step_s))


def print_rows(rows: list[DataWait], seconds_per_frame: float) -> None:
    print(f"  reader: {seconds_per_frame * 1e3:.0f} ms a frame in-process (targeted reads + decode, the stream's "
          f"encoding and decoding; one CPU)")
    for row in rows:
        print(f"  simulated GPU step {row.step_s:.2f} s, {row.frames} frames, reader_actors={row.reader_actors} "
              f"reader_cpus={row.reader_cpus:g} prefetch_batches={row.prefetch_batches}: data wait {row.fraction:.4f} "
              f"(a step's wait: median {row.median_wait_s:.3f} s, p90 {row.p90_wait_s:.3f} s, max "
              f"{row.max_wait_s:.2f} s){'' if row.fraction < 0.05 else '  MISSES 5 %'}")
    for step_s in sorted({row.step_s for row in rows}, reverse=True):
        frames = rows[0].frames
        print(f"  a {step_s:.2f} s step: {frames} frames x {seconds_per_frame * 1e3:.0f} ms = "
              f"{frames * seconds_per_frame:.2f} s of reading, so reader_actors >= "
              f"{readers_needed(seconds_per_frame, frames, step_s)}, each with a CPU of its own (reader_cpus: 1 where "
              f"the node has them)")
