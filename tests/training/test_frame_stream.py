"""PPKT's streamed samples: the same data the whole-scene loader gave, distinct frames per batch, and an order
that a resumed run continues."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pix2point.io.features_table import shard_path
from pix2point.io.samples_table import FrameReader, sample_refs, samples_path
from pix2point.training.runtime.distributed import CHECKPOINT_SNAPSHOT, STEP_FILE, checkpointed_step
from pix2point.io.samples_table import FrameSample
from pix2point.training.pretraining.frame_stream import StreamSpec
from pix2point.training.runtime.sample_stream import (
    DirectSamples, decode_samples, encode_sample, rank_dataset_name, rank_datasets)
from pix2point.training.augment import mirror_columns
from pix2point.training.pretraining.ppkt import teacher_map_and_columns
from tests.reference_loaders import PretrainFrames
from pix2point.training.runtime.sample_order import rank_samples, step_samples

SCENES = ["scene0000_00", "scene0001_00"]


def spine_dirs(smoke_spine):
    return smoke_spine["scenes"], smoke_spine["features2d"], smoke_spine["pairs"]


def assert_same_sample(expected, got):
    for name in ("xyz", "rgb", "pixels", "features"):
        want, have = getattr(expected, name), getattr(got, name)
        assert want.dtype == have.dtype, name
        np.testing.assert_array_equal(have, want, err_msg=name)
    assert got.image_size == expected.image_size


def test_targeted_reads_give_exactly_the_whole_scene_loaders_samples(smoke_spine):
    scenes_dir, features_dir, pairs_dir = spine_dirs(smoke_spine)
    old = PretrainFrames(scenes_dir, features_dir, pairs_dir, SCENES)
    refs = sample_refs(pairs_dir, SCENES)
    assert [(ref.scene, ref.frame) for ref in refs] == old.index
    reader = FrameReader(pairs_dir, features_dir)
    for position, ref in enumerate(refs):
        sample = reader.read(ref)
        assert_same_sample(old[position], sample)
        # ... and the same after the trip through a Ray Data block.
        (decoded,) = decode_samples(pa.Table.from_pylist([encode_sample(0, 0, position, sample.arrays(), 0)]))
        assert_same_sample(old[position], FrameSample.from_arrays(decoded))
        # The mirrored view is what the whole-scene loader's sample meets under the 2D flip.
        mirrored = reader.read(ref, mirrored=True)
        features, u = teacher_map_and_columns(old[position], flip=True)
        np.testing.assert_array_equal(mirrored.features, features)
        np.testing.assert_array_equal(mirrored.pixels[:, 0], u)
        np.testing.assert_array_equal(mirrored.pixels[:, 0], mirror_columns(sample.pixels[:, 0], sample.image_size[0]))
        np.testing.assert_array_equal(mirrored.xyz, sample.xyz)


def test_samples_file_is_one_row_group_per_frame_and_reads_count_storage_bytes(smoke_spine):
    _, features_dir, pairs_dir = spine_dirs(smoke_spine)
    parquet = pq.ParquetFile(samples_path(pairs_dir, SCENES[0]))
    assert parquet.metadata.num_row_groups == parquet.metadata.num_rows == 3
    reader = FrameReader(pairs_dir, features_dir)
    first, second = sample_refs(pairs_dir, SCENES[:1])[:2]
    reader.read(first)
    after_footers = reader.bytes_read
    reader.read(second)
    # A later frame costs its two row groups' column chunks (zstd-compressed) and no footer.
    chunks = sum(parquet.metadata.row_group(second.row_group).column(i).total_compressed_size
                 for i in range(parquet.metadata.num_columns)
                 if parquet.schema_arrow.names[i] in ("xyz", "rgb", "u", "v", "color_width", "color_height"))
    features = pq.ParquetFile(shard_path(features_dir, SCENES[0])).metadata.row_group(second.features_row_group)
    chunks += features.column(2).total_compressed_size
    assert chunks <= reader.bytes_read - after_footers <= chunks * 1.05 + 512


def test_no_frame_twice_in_a_global_batch_and_each_epoch_covers_distinct_frames():
    num_samples, per_rank, world = 23, 3, 2
    for step in range(40):
        batch = np.concatenate([rank_samples(7, step, rank, world, per_rank, num_samples) for rank in range(world)])
        assert len(set(batch.tolist())) == per_rank * world
    epoch = np.concatenate([step_samples(7, step, num_samples, per_rank * world) for step in range(23 // 6)])
    assert len(set(epoch.tolist())) == len(epoch) == 18
    # A split smaller than the global batch: each worker's share is still distinct.
    for step in range(20):
        assert len(set(rank_samples(7, step, 1, 2, 3, 5).tolist())) == 3
    with pytest.raises(ValueError, match="needs at least"):
        rank_samples(0, 0, 0, 2, 3, 2)


def test_ray_data_stream_holds_the_scheduled_samples_and_a_resumed_stream_continues_the_order(smoke_spine, ray_runtime):
    scenes_dir, features_dir, pairs_dir = spine_dirs(smoke_spine)
    spec = StreamSpec.from_refs(sample_refs(pairs_dir, SCENES), pairs_dir=pairs_dir, features_dir=features_dir,
                                flip_2d=True, seed=3, per_rank=2, world=2)
    direct = DirectSamples(spec, rank=1)

    def rows(start_step):
        dataset = rank_datasets(spec, start_step, 5, reader_actors=1, reader_cpus=0)[rank_dataset_name(1)]
        dataset.context.execution_options.preserve_order = True
        return [batch for batch in dataset.iter_batches(batch_size=2, batch_format="pyarrow")]

    uninterrupted, resumed = rows(0), rows(3)
    assert [b["step"].to_pylist() for b in uninterrupted] == [[step, step] for step in range(5)]
    for step, batch in enumerate(uninterrupted):
        expected = direct.next(step)
        assert batch["sample"].to_pylist() == expected.ids
        for want, got in zip(expected.samples, decode_samples(batch)):
            assert_same_sample(FrameSample.from_arrays(want), FrameSample.from_arrays(got))
    # A fresh reader reads each file's footer again, so only the bytes read may differ.
    without_bytes = lambda batches: [b.drop_columns(["bytes_read"]).to_pydict() for b in batches]  # noqa: E731
    assert without_bytes(resumed) == without_bytes(uninterrupted[3:])


def test_driver_finds_the_step_of_the_checkpoint_ray_restores(tmp_path):
    """The step comes from the checkpoint Ray Train registered (its manager's snapshot), not the newest folder:
    a folder written by a worker killed before Ray registered it is not what a resumed run restores."""
    assert checkpointed_step(tmp_path, "ppkt") == 0
    for name, step in (("checkpoint_a", 5), ("checkpoint_b", 10)):
        (tmp_path / "ppkt" / name).mkdir(parents=True)
        (tmp_path / "ppkt" / name / STEP_FILE).write_text(json.dumps({"step": step}))
    assert checkpointed_step(tmp_path, "ppkt") == 0  # folders alone: Ray registered none
    snapshot = tmp_path / "ppkt" / CHECKPOINT_SNAPSHOT
    snapshot.write_text(json.dumps({"latest_checkpoint_result": {"checkpoint_dir_name": "checkpoint_a"}}))
    assert checkpointed_step(tmp_path, "ppkt") == 5
    snapshot.write_text(json.dumps({"latest_checkpoint_result": {"checkpoint_dir_name": "checkpoint_b"}}))
    assert checkpointed_step(tmp_path, "ppkt") == 10
