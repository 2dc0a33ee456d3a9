"""One trainer's stream holds its runs one after another (training/runtime/trials.py): SampleStream cuts blocks that
span steps and runs into each run's batches, of each run's own size, and refuses a batch of the wrong run."""

import numpy as np
import pyarrow as pa
import pytest

from pix2point.training.runtime.sample_stream import SampleStream, encode_sample


def rows(run: str, steps: range, per_step: int) -> list[dict]:
    """Encoded samples whose `sample` id is run-major, so each (run, step) has ids no other has."""
    base = 1000 if run == "b" else 0
    return [encode_sample(step, slot, base + step * per_step + slot, {"x": np.full(3, step, np.float32)}, 12, run)
            for step in steps for slot in range(per_step)]


def stream_of(samples: list[dict], block_sizes: list[int], per_rank: int) -> SampleStream:
    cuts = np.cumsum([0, *block_sizes])
    assert cuts[-1] == len(samples)
    return SampleStream(iter(pa.Table.from_pylist(samples[a:b]) for a, b in zip(cuts[:-1], cuts[1:])), per_rank)


def test_each_run_gets_its_own_batch_size_across_block_and_run_boundaries():
    samples = rows("a", range(3), per_step=2) + rows("b", range(2), per_step=3)  # 6 + 6 rows
    stream = stream_of(samples, [3, 4, 5], per_rank=2)  # blocks cut steps and the run boundary
    assert [stream.next(step, "a").ids for step in range(3)] == [[0, 1], [2, 3], [4, 5]]
    got = [stream.next(step, "b", per_rank=3) for step in range(2)]
    assert [data.ids for data in got] == [[1000, 1001, 1002], [1003, 1004, 1005]]
    assert [sample["x"][0] for sample in got[1].samples] == [1.0, 1.0, 1.0]


def test_a_resumed_run_skips_the_steps_before_its_checkpoint_but_never_into_the_next_run():
    samples = rows("a", range(3), per_step=2) + rows("b", range(2), per_step=2)
    stream = stream_of(samples, [5, 5], per_rank=2)
    assert stream.next(2, "a").ids == [4, 5]  # steps 0 and 1 of "a" came before the checkpoint
    with pytest.raises(RuntimeError, match=r"step 3 of run 'a' got 2 samples of \(run, step\) \[\('b', 0\)\]"):
        stream.next(3, "a")  # the stream and the training disagree: an error, not the next run's samples


def test_asking_past_the_end_of_the_stream_is_an_error():
    stream = stream_of(rows("a", range(1), per_step=2), [2], per_rank=2)
    stream.next(0, "a")
    with pytest.raises(RuntimeError, match="sample stream ended"):
        stream.next(1, "a")
