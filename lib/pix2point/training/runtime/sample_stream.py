"""Training samples streamed to Ray Train workers through Ray Data, in an order fixed by (seed, step, rank):
the one data path of every training stage (PPKT and I2P-MAE pretraining, segmentation finetuning,
classification).

A stage describes its training split as a `SampleSource`: a small, picklable catalogue of N samples and
the order's key (seed, samples per rank, workers), which opens a `SampleReader` that reads one sample with
targeted reads (a row group, one scene's file) and counts the bytes it read. The driver builds one dataset
per rank: the step ids still to run, mapped by a pool of reader actors (`ReadSteps`) that turn each step
into its samples (training/runtime/sample_order.rank_samples: distinct within a step's global batch). The datasets
go to the TorchTrainer unsplit (DataConfig datasets_to_split=[]) with preserve_order, since Ray's dynamic
split and out-of-order execution would make the sample order depend on timing; a worker reads its own
dataset with `ray.train.get_dataset_shard` and Ray Data prefetches the next batches while the step trains.
A resumed run's datasets start at the step the checkpoint holds, so it reads the same samples from there on
as an uninterrupted run. A worker thus holds a few steps' samples, whatever the dataset's size.

One trainer may train several runs one after another (a grid's concurrency slot, training/runtime/trials.py): its
datasets are then the runs' `Segment`s in training order, each with its own catalogue, read by the same
reader actor, so a run's first samples are prefetched while the run before it trains its last steps.

Samples travel as named numpy arrays (`dict[str, np.ndarray]`), each stage converting them to its own type.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from pix2point.training.runtime.sample_order import rank_samples, steps_per_epoch

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


@dataclass(frozen=True)
class Segment:
    """Steps `start_step` .. `steps` - 1 of run `run`, whose samples `source` catalogues."""

    run: str
    source: SampleSource
    start_step: int
    steps: int


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
    """Ray Data actor: a batch of (segment, step) pairs -> a table with one row per sample of those steps, in
    order. A segment's reader opens at its first step (its footers are read once, not per step)."""

    def __init__(self, segments: tuple[Segment, ...], rank: int):
        self.segments, self.rank = segments, rank
        self.readers: dict[int, SampleReader] = {}

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        rows = []
        for index, step in batch["data"].reshape(-1, 2).tolist():
            segment = self.segments[index]
            if index not in self.readers:
                self.readers = {index: segment.source.reader()}  # the runs before it are done with theirs
            ids, samples, bytes_read = read_step(segment.source, self.readers[index], step, self.rank)
            rows += [encode_sample(step, slot, sample, arrays, read, segment.run)
                     for slot, (sample, arrays, read) in enumerate(zip(ids, samples, bytes_read))]
        return pa.Table.from_pylist(rows)


def sample_bytes(arrays: Arrays) -> int:
    """Bytes of the arrays a training step uses (the denominator of read amplification)."""
    return sum(array.nbytes for array in arrays.values())


def encode_sample(step: int, slot: int, sample: int, arrays: Arrays, bytes_read: int, run: str = "") -> dict[str, Any]:
    """One row of a streamed block: each array as raw bytes with its dtype and shape (Ray Data passes the
    buffers through untouched, so the worker gets the very values the reader read)."""
    return {"run": run, "step": step, "slot": slot, "sample": sample, "bytes_read": bytes_read,
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
    return segment_datasets([Segment("", source, start_step, steps)], reader_actors, reader_cpus)


def segment_datasets(segments: Sequence[Segment], reader_actors: int = 1, reader_cpus: float = 0.0) -> dict:
    """{dataset name: Ray Dataset} for every rank: the samples of each segment's steps, segment after segment,
    in step order. All segments must have the same number of workers. Raises ValueError (on the driver) when
    a segment's split is smaller than one step's batch, or the segments disagree on the workers."""
    import ray.data

    segments = tuple(segments)
    worlds = {segment.source.world for segment in segments}
    if len(worlds) != 1:
        raise ValueError(f"the runs of one trainer must have one number of workers, got {sorted(worlds)}")
    for segment in segments:  # fail here, on the driver, if a split is too small
        steps_per_epoch(len(segment.source), segment.source.per_rank)
    pairs = np.array([(index, step) for index, segment in enumerate(segments)
                      for step in range(segment.start_step, segment.steps)], dtype=np.int64).reshape(-1, 2)
    # The (segment, step) ids live in the object store, a few steps a block: unlike ray.data.range, whose
    # read tasks reserve a CPU, they need none, so the readers start even when the workers hold every CPU.
    blocks = np.array_split(pairs, max(1, -(-len(pairs) // STEPS_PER_BLOCK)))
    return {
        rank_dataset_name(rank): without_progress_bars(ray.data.from_numpy(blocks).map_batches(
            ReadSteps, fn_constructor_kwargs={"segments": segments, "rank": rank}, batch_size=1,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=reader_actors), num_cpus=reader_cpus))
        for rank in range(worlds.pop())
    }


def without_progress_bars(dataset):
    """`dataset` (a Ray Dataset) with Ray Data's progress bars off: a training run's progress is the stage's
    own lines (training/runtime/progress.py), and the bars a worker's executor redraws several times a second
    went through Ray's log monitor into the run log (12,521 bar lines of the default run's 211,077 at d2c4f9e).
    The setting is the dataset's own copy of the DataContext, which travels with it to the workers."""
    dataset.context.enable_progress_bars = False
    dataset.context.enable_operator_progress_bars = False
    return dataset


def trainer_data(source: SampleSource, start_step: int, steps: int, reader_actors: int = 1,
                 reader_cpus: float = 0.0) -> dict[str, Any]:
    """distributed.fit()'s `datasets` and `dataset_config` for `source`: each rank's samples from
    `start_step` on, unsplit and in order (the module docstring says why)."""
    return segments_trainer_data([Segment("", source, start_step, steps)], reader_actors, reader_cpus)


def segments_trainer_data(segments: Sequence[Segment], reader_actors: int = 1, reader_cpus: float = 0.0) -> dict[str, Any]:
    """distributed.fit()'s `datasets` and `dataset_config` for runs trained one after another by one trainer:
    each rank's samples of every segment, unsplit and in order."""
    import ray.train
    from ray.data import ExecutionOptions

    return {"datasets": segment_datasets(segments, reader_actors, reader_cpus),
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

    def __init__(self, blocks: Iterator[pa.Table], per_rank: int):
        self._blocks, self.per_rank = blocks, per_rank
        self._buffer = pa.table({})

    @classmethod
    def for_rank(cls, rank: int, per_rank: int, prefetch_batches: int = 2) -> SampleStream:
        """The stream of rank `rank`'s dataset; `per_rank`: samples a step when `next` is not told otherwise."""
        import ray.train

        shard = ray.train.get_dataset_shard(rank_dataset_name(rank))
        # Whole blocks, cut into steps here: the runs of one trainer may take different numbers a step.
        blocks = shard.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=prefetch_batches)
        return cls(iter(blocks), per_rank)

    def next(self, step: int, run: str = "", per_rank: int | None = None) -> StepData:
        """The samples of 0-based `step` of run `run` (`per_rank` of them: the stream's by default); a batch of
        another step or run means the stream and the resumed state disagree, which is an error rather than a
        silent change of order."""
        count = per_rank or self.per_rank
        started = time.perf_counter()
        table = self._take(count)
        while table["run"][0].as_py() == run and table["step"][0].as_py() < step:  # began before the checkpoint
            table = self._take(count)
        wait = time.perf_counter() - started
        keys = set(zip(table["run"].to_pylist(), table["step"].to_pylist()))
        if keys != {(run, step)}:
            raise RuntimeError(f"sample stream out of step: training step {step} of run {run!r} got {len(table)} "
                               f"samples of (run, step) {sorted(keys)} (expected {count} of step {step})")
        return StepData(table["sample"].to_pylist(), decode_samples(table), sum(table["bytes_read"].to_pylist()),
                        sum(table["sample_bytes"].to_pylist()), wait)

    def _take(self, count: int) -> pa.Table:
        """The next `count` rows, across block boundaries; fewer only at the end of the stream."""
        parts, have = [], 0
        while have < count:
            if self._buffer.num_rows == 0:
                block = next(self._blocks, None)
                if block is None:
                    break
                self._buffer = block
            part = self._buffer.slice(0, count - have)
            self._buffer = self._buffer.slice(part.num_rows)
            parts.append(part)
            have += part.num_rows
        if not parts:
            raise RuntimeError("sample stream ended: the dataset holds fewer steps than the training asked for")
        return pa.concat_tables(parts)


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
