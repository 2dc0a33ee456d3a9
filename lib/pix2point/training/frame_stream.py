"""PPKT samples streamed to Ray Train workers through Ray Data, in an order fixed by (seed, step, rank).

The driver builds one dataset per rank: a range over the steps still to run, mapped by a pool of reader
actors (`ReadSteps`) that turn each step into its `per_rank` samples with targeted row-group reads
(io/samples_table.FrameReader). The datasets go to the TorchTrainer unsplit (DataConfig
datasets_to_split=[]) with preserve_order, since Ray's dynamic split and out-of-order execution would make
the sample order depend on timing; a worker reads its own dataset with `ray.train.get_dataset_shard`, and
Ray Data prefetches the next batches while the step trains. A resumed run's datasets start at the step the
checkpoint holds, so it reads the same frames from there on as an uninterrupted run (training/sample_order).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pix2point.io.samples_table import FrameReader, FrameSample, SampleRef
from pix2point.training.sample_order import rank_flips, rank_samples, steps_per_epoch

STEPS_PER_BLOCK = 4


def rank_dataset_name(rank: int) -> str:
    return f"ppkt_rank{rank}"


@dataclass(frozen=True)
class StreamSpec:
    """What the reader actors need to turn a step into samples; small (the sample catalogue is arrays)."""

    pairs_dir: Path
    features_dir: Path
    flip_2d: bool  # the data path draws PPKT's 2D flip and reads only the map of the view it drew
    scenes: tuple[str, ...]
    scene_of: np.ndarray  # [N] int32 index into scenes
    frame: np.ndarray  # [N] int32
    row_group: np.ndarray  # [N] int32
    features_row_group: np.ndarray  # [N] int32
    features_row: np.ndarray  # [N] int32
    seed: int
    per_rank: int
    world: int

    @classmethod
    def from_refs(cls, refs: Sequence[SampleRef], **fields) -> StreamSpec:
        scenes = tuple(sorted({ref.scene for ref in refs}))
        index = {scene: i for i, scene in enumerate(scenes)}
        column = lambda values: np.array(values, np.int32)  # noqa: E731
        return cls(scenes=scenes, scene_of=column([index[r.scene] for r in refs]), frame=column([r.frame for r in refs]),
                   row_group=column([r.row_group for r in refs]),
                   features_row_group=column([r.features_row_group for r in refs]),
                   features_row=column([r.features_row for r in refs]), **fields)

    def ref(self, sample: int) -> SampleRef:
        return SampleRef(self.scenes[self.scene_of[sample]], int(self.frame[sample]), int(self.row_group[sample]),
                         int(self.features_row_group[sample]), int(self.features_row[sample]))

    def __len__(self) -> int:
        return len(self.frame)


class ReadSteps:
    """Ray Data actor: a batch of step numbers -> a table with one row per sample of those steps, in order."""

    def __init__(self, spec: StreamSpec, rank: int):
        self.spec, self.rank = spec, rank
        self.reader = FrameReader(spec.pairs_dir, spec.features_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        rows = []
        for step in batch["data"].tolist():
            ids, frames, bytes_read = read_step(self.spec, self.reader, step, self.rank)
            rows += [encode_sample(step, slot, sample, frame, read)
                     for slot, (sample, frame, read) in enumerate(zip(ids, frames, bytes_read))]
        return pa.Table.from_pylist(rows)


def read_step(spec: StreamSpec, reader: FrameReader, step: int, rank: int) -> tuple[list[int], list[FrameSample], list[int]]:
    """Rank `rank`'s samples of `step` as the schedule says, each in the view its flip draw picked:
    (catalogue ids, samples, bytes each read from storage)."""
    ids = rank_samples(spec.seed, step, rank, spec.world, spec.per_rank, len(spec)).tolist()
    flips = rank_flips(spec.seed, step, rank, spec.per_rank) if spec.flip_2d else np.zeros(len(ids), bool)
    frames, bytes_read = [], []
    for sample, mirrored in zip(ids, flips.tolist()):
        before = reader.bytes_read
        frames.append(reader.read(spec.ref(sample), mirrored))
        bytes_read.append(reader.bytes_read - before)
    return ids, frames, bytes_read


def encode_sample(step: int, slot: int, sample: int, frame: FrameSample, bytes_read: int) -> dict:
    """One row of a streamed block (raw buffers: Ray Data passes them through untouched)."""
    return {"step": step, "slot": slot, "sample": sample, "bytes_read": bytes_read, "sample_bytes": frame.nbytes,
            "width": frame.image_size[0], "height": frame.image_size[1], "points": len(frame.xyz),
            "xyz": frame.xyz.tobytes(), "rgb": frame.rgb.tobytes(), "pixels": frame.pixels.astype(np.int32).tobytes(),
            "features": frame.features.tobytes(), "features_shape": list(frame.features.shape)}


def decode_samples(table: pa.Table) -> list[FrameSample]:
    columns = table.to_pydict()
    return [
        FrameSample(
            xyz=np.frombuffer(columns["xyz"][i], np.float32).reshape(points, 3),
            rgb=np.frombuffer(columns["rgb"][i], np.uint8).reshape(points, 3),
            pixels=np.frombuffer(columns["pixels"][i], np.int32).reshape(points, 2).astype(np.int64),
            image_size=(columns["width"][i], columns["height"][i]),
            features=np.frombuffer(columns["features"][i], np.float16).reshape(columns["features_shape"][i]),
        )
        for i, points in enumerate(columns["points"])
    ]


def rank_datasets(spec: StreamSpec, start_step: int, steps: int, reader_actors: int, reader_cpus: float) -> dict:
    """{dataset name: Ray Dataset} for every rank: its samples of steps start_step .. steps - 1, in step order."""
    import ray.data

    steps_per_epoch(len(spec), spec.per_rank)  # fail here, on the driver, if the split is too small
    step_ids = np.arange(start_step, steps, dtype=np.int64)
    # The step ids live in the object store, a few steps a block: unlike ray.data.range, whose read tasks
    # reserve a CPU, they need none, so the readers start even when the training workers hold every CPU.
    blocks = np.array_split(step_ids, max(1, -(-len(step_ids) // STEPS_PER_BLOCK)))
    datasets = {}
    for rank in range(spec.world):
        datasets[rank_dataset_name(rank)] = ray.data.from_numpy(blocks).map_batches(
            ReadSteps, fn_constructor_kwargs={"spec": spec, "rank": rank}, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=reader_actors), num_cpus=reader_cpus)
    return datasets


@dataclass(frozen=True)
class StepData:
    ids: list[int]  # the samples' positions in the catalogue (StreamSpec), in batch order
    samples: list[FrameSample]
    bytes_read: int  # read from storage for these samples, footers included
    sample_bytes: int  # of the arrays the step uses
    wait_s: float  # the training loop blocked for them


class SampleStream:
    """A worker's view of its dataset shard: `next(step)` is that step's samples, as the schedule says."""

    def __init__(self, batches: Iterator[pa.Table], per_rank: int):
        self._batches, self.per_rank = batches, per_rank

    @classmethod
    def for_rank(cls, rank: int, per_rank: int, prefetch_batches: int) -> SampleStream:
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
