"""Training samples streamed to Ray Train workers through Ray Data, in an order fixed by (seed, step, rank):
the one data path of every training stage (PPKT and I2P-MAE pretraining, segmentation finetuning,
classification).

A stage describes its training split as a `SampleSource`: a small, picklable catalogue of N samples and
the order's key (seed, samples per rank, workers), which opens a `SampleReader` that reads one sample with
targeted reads (a row group, one scene's file) and counts the bytes it read. The driver builds one dataset
per rank: the step ids still to run, mapped by a pool of reader actors (`ReadSteps`) that turn each step
into its samples (training/sample_order.rank_samples: distinct within a step's global batch). The datasets
go to the TorchTrainer unsplit (DataConfig datasets_to_split=[]) with preserve_order, since Ray's dynamic
split and out-of-order execution would make the sample order depend on timing; a worker reads its own
dataset with `ray.train.get_dataset_shard` and Ray Data prefetches the next batches while the step trains.
A resumed run's datasets start at the step the checkpoint holds, so it reads the same samples from there on
as an uninterrupted run. A worker thus holds a few steps' samples, whatever the dataset's size.

Samples travel as named numpy arrays (`dict[str, np.ndarray]`), each stage converting them to its own type.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from pix2point.training.sample_order import rank_samples, steps_per_epoch

STEPS_PER_BLOCK = 4
Arrays = dict[str, np.ndarray]


class SampleReader(Protocol):
    bytes_read: int  # read from storage so far, footers included

    def read(self, sample: int, step: int, rank: int, slot: int) -> Arrays:
        """Catalogue sample `sample`, which rank `rank` trains on at `step` in batch position `slot` (a
        source may draw per-sample views from these, as PPKT's 2D flip)."""


class SampleSource(Protocol):
    """A training split's catalogue (picklable and small: it travels to every reader actor)."""

    seed: int
    per_rank: int  # samples per step and worker
    world: int  # workers

    def __len__(self) -> int: ...

    def reader(self) -> SampleReader:
        """A reader of this catalogue's samples (opened where the reads happen)."""


def rank_dataset_name(rank: int) -> str:
    return f"samples_rank{rank}"


def step_ids(source: SampleSource, step: int, rank: int) -> list[int]:
    """The catalogue samples rank `rank` trains on at 0-based `step`."""
    return rank_samples(source.seed, step, rank, source.world, source.per_rank, len(source)).tolist()


def read_step(source: SampleSource, reader: SampleReader, step: int, rank: int) -> tuple[list[int], list[Arrays], list[int]]:
    """Rank `rank`'s samples of `step` as the schedule says: (catalogue ids, samples, bytes each read)."""
    ids = step_ids(source, step, rank)
    samples, bytes_read = [], []
    for slot, sample in enumerate(ids):
        before = reader.bytes_read
        samples.append(reader.read(sample, step, rank, slot))
        bytes_read.append(reader.bytes_read - before)
    return ids, samples, bytes_read


class ReadSteps:
    """Ray Data actor: a batch of step numbers -> a table with one row per sample of those steps, in order."""

    def __init__(self, source: SampleSource, rank: int):
        self.source, self.rank = source, rank
        self.reader = source.reader()

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        rows = []
        for step in batch["data"].tolist():
            ids, samples, bytes_read = read_step(self.source, self.reader, step, self.rank)
            rows += [encode_sample(step, slot, sample, arrays, read)
                     for slot, (sample, arrays, read) in enumerate(zip(ids, samples, bytes_read))]
        return pa.Table.from_pylist(rows)


def sample_bytes(arrays: Arrays) -> int:
    """Bytes of the arrays a training step uses (the denominator of read amplification)."""
    return sum(array.nbytes for array in arrays.values())


def encode_sample(step: int, slot: int, sample: int, arrays: Arrays, bytes_read: int) -> dict[str, Any]:
    """One row of a streamed block: each array as raw bytes with its dtype and shape (Ray Data passes the
    buffers through untouched, so the worker gets the very values the reader read)."""
    return {"step": step, "slot": slot, "sample": sample, "bytes_read": bytes_read,
            "sample_bytes": sample_bytes(arrays), "names": list(arrays),
            "dtypes": [array.dtype.str for array in arrays.values()],
            "shapes": [list(array.shape) for array in arrays.values()],
            "buffers": [np.ascontiguousarray(array).tobytes() for array in arrays.values()]}


def decode_samples(table: pa.Table) -> list[Arrays]:
    columns = table.select(["names", "dtypes", "shapes", "buffers"]).to_pydict()
    return [
        {name: np.frombuffer(buffer, np.dtype(dtype)).reshape(shape)
         for name, dtype, shape, buffer in zip(names, dtypes, shapes, buffers)}
        for names, dtypes, shapes, buffers in zip(columns["names"], columns["dtypes"], columns["shapes"], columns["buffers"])
    ]


def rank_datasets(source: SampleSource, start_step: int, steps: int, reader_actors: int = 1,
                  reader_cpus: float = 0.0) -> dict:
    """{dataset name: Ray Dataset} for every rank: its samples of steps start_step .. steps - 1, in step order.
    Raises ValueError (on the driver) when the split is smaller than one step's batch."""
    import ray.data

    steps_per_epoch(len(source), source.per_rank)  # fail here, on the driver, if the split is too small
    step_numbers = np.arange(start_step, steps, dtype=np.int64)
    # The step ids live in the object store, a few steps a block: unlike ray.data.range, whose read tasks
    # reserve a CPU, they need none, so the readers start even when the training workers hold every CPU.
    blocks = np.array_split(step_numbers, max(1, -(-len(step_numbers) // STEPS_PER_BLOCK)))
    return {
        rank_dataset_name(rank): ray.data.from_numpy(blocks).map_batches(
            ReadSteps, fn_constructor_kwargs={"source": source, "rank": rank}, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=reader_actors), num_cpus=reader_cpus)
        for rank in range(source.world)
    }


def trainer_data(source: SampleSource, start_step: int, steps: int, reader_actors: int = 1,
                 reader_cpus: float = 0.0) -> dict[str, Any]:
    """distributed.fit()'s `datasets` and `dataset_config` for `source`: each rank's samples from
    `start_step` on, unsplit and in order (the module docstring says why)."""
    import ray.train
    from ray.data import ExecutionOptions

    return {"datasets": rank_datasets(source, start_step, steps, reader_actors, reader_cpus),
            "dataset_config": ray.train.DataConfig(datasets_to_split=[],
                                                   execution_options=ExecutionOptions(preserve_order=True))}


@dataclass(frozen=True)
class StepData:
    ids: list[int]  # the samples' positions in the catalogue, in batch order
    samples: list[Arrays]
    bytes_read: int  # read from storage for these samples, footers included
    sample_bytes: int  # of the arrays the step uses
    wait_s: float  # the training loop blocked for them

    def costs(self, step_s: float) -> dict[str, Any]:
        """A step's loss.parquet columns for its data: bytes read from storage, bytes of its samples, seconds
        waiting for them, seconds of the whole step `step_s`, their ratio, and which samples it trained on."""
        return {"bytes_read": self.bytes_read, "sample_bytes": self.sample_bytes, "data_wait_s": self.wait_s,
                "step_s": step_s, "data_wait": self.wait_s / step_s, "samples": self.ids}


class Samples(Protocol):
    def next(self, step: int) -> StepData:
        """The samples this worker trains on at 0-based `step`, with what reading them cost."""


class SampleStream:
    """A worker's view of its dataset shard: `next(step)` is that step's samples, as the schedule says."""

    def __init__(self, batches: Iterator[pa.Table], per_rank: int):
        self._batches, self.per_rank = batches, per_rank

    @classmethod
    def for_rank(cls, rank: int, per_rank: int, prefetch_batches: int = 2) -> SampleStream:
        import ray.train

        shard = ray.train.get_dataset_shard(rank_dataset_name(rank))
        batches = shard.iter_batches(batch_size=per_rank, batch_format="pyarrow", prefetch_batches=prefetch_batches,
                                     drop_last=False)
        return cls(iter(batches), per_rank)

    def next(self, step: int) -> StepData:
        """The samples of 0-based `step`; a batch of another step means the stream and the resumed state
        disagree, which is an error rather than a silent change of order."""
        started = time.perf_counter()
        table = next(self._batches)
        while table["step"][0].as_py() < step:  # the dataset began before the checkpoint Ray restored
            table = next(self._batches)
        wait = time.perf_counter() - started
        steps = set(table["step"].to_pylist())
        if steps != {step} or len(table) != self.per_rank:
            raise RuntimeError(f"sample stream out of step: training step {step} got {len(table)} samples of "
                               f"steps {sorted(steps)} (expected {self.per_rank} of step {step})")
        return StepData(table["sample"].to_pylist(), decode_samples(table), sum(table["bytes_read"].to_pylist()),
                        sum(table["sample_bytes"].to_pylist()), wait)


class DirectSamples:
    """The same samples as the streamed ones, read in this process when the step asks (no prefetch): for
    the benches' in-process loops and for tests that compare the two paths."""

    def __init__(self, source: SampleSource, rank: int):
        self.source, self.rank = source, rank
        self.reader = source.reader()

    def next(self, step: int) -> StepData:
        started = time.perf_counter()
        ids, samples, bytes_read = read_step(self.source, self.reader, step, self.rank)
        return StepData(ids, samples, sum(bytes_read), sum(map(sample_bytes, samples)), time.perf_counter() - started)
