"""Objects and scenes streamed to the training workers (classification, I2P-MAE, finetuning): the same data the
whole-split loaders gave, one row group read per object, distinct samples per batch, and an order a resumed
run continues (real Parquet, real Ray Data)."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from stages import views2d

from pix2point.io.objects_table import ROW_GROUP_ROWS, objects_path, read_objects, split_rows
from pix2point.io.scenes_table import IGNORE_LABEL
from pix2point.training.finetuning.classification import run_source
from pix2point.training.runtime.distributed import checkpoint_step, run_snapshot
from pix2point.training.object_samples import ObjectSource
from pix2point.training.runtime.sample_order import rank_samples
from pix2point.training.runtime.sample_stream import (
    DirectSamples,
    decode_samples,
    rank_dataset_name,
    rank_datasets,
)
from pix2point.training.finetuning.segmentation_data import SceneSource
from tests.reference_loaders import limited_labels, load_object_views


@pytest.fixture(scope="module")
def views_dir(tiny_objects, tmp_path_factory):
    out = tmp_path_factory.mktemp("views2d")
    views2d.run(views2d.Params(image_size=64, batch_size=8, objects_per_task=16), {"objects": tiny_objects}, out)
    return out


@pytest.mark.parametrize("distribution", ["reference", "min_max"])
def test_streamed_objects_hold_exactly_the_whole_split_loaders_points_labels_and_views(tiny_objects, views_dir,
                                                                                       distribution):
    train, old = read_objects(tiny_objects, "train"), load_object_views(tiny_objects, views_dir, distribution)
    rows = split_rows(tiny_objects, "train")
    reader = ObjectSource(tiny_objects, rows, seed=0, per_rank=4, world=1, views_dir=views_dir,
                          saliency_distribution=distribution).reader()
    for index in range(len(rows)):
        sample = reader.read(index, step=0, rank=0, slot=0)
        np.testing.assert_array_equal(sample["points"], train.points[index])
        assert sample["label"] == train.labels[index] and sample["label"].dtype == np.int16
        np.testing.assert_array_equal(sample["saliency"], old.saliency[index])
        np.testing.assert_array_equal(sample["features"], old.features[index])
        assert sample["features"].dtype == np.float16 and sample["saliency"].dtype == np.float32


def test_reading_one_object_reads_its_row_group_not_the_split(tiny_objects):
    path = objects_path(tiny_objects)
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_row_groups > 1 and metadata.row_group(0).num_rows == ROW_GROUP_ROWS
    reader = ObjectSource(tiny_objects, np.arange(metadata.num_rows), 0, 1, 1).reader()
    reader.read(0, 0, 0, 0)
    after_footer = reader.bytes_read
    last = metadata.num_rows - 1
    reader.read(last, 0, 0, 0)
    group = metadata.row_group(metadata.num_row_groups - 1)
    names = pq.ParquetFile(path).schema_arrow.names
    chunks = sum(group.column(i).total_compressed_size for i in range(group.num_columns)
                 if names[i] in ("points", "label"))
    assert chunks <= reader.bytes_read - after_footer <= chunks * 1.05 + 512


def test_few_shot_source_holds_the_runs_subset_and_caps_the_batch_at_its_size(tiny_objects):
    source = run_source(tiny_objects, shots=1, seed=0, batch_size=32, workers=1)
    labels = read_objects(tiny_objects, "train").labels
    chosen = np.searchsorted(split_rows(tiny_objects, "train"), source.rows)
    assert sorted(labels[chosen].tolist()) == list(range(8)) and source.per_rank == 8
    for step in range(5):  # the whole subset each step, each object once
        assert sorted(DirectSamples(source, 0).next(step).ids) == list(range(8))


@pytest.mark.parametrize("unit, budget", [("scenes", 1.0), ("points", 0.1), ("points_per_scene", 20)])
def test_streamed_scenes_hold_exactly_the_whole_split_loaders_points_and_budgeted_labels(tiny_scenes, unit, budget):
    old = limited_labels(tiny_scenes, budget, unit, seed=3)
    source = SceneSource.for_run(tiny_scenes, budget, unit, 3, scenes_per_batch=2, world=1)
    assert list(source.scenes) == [scene.name for scene in old] and source.per_rank == len(old)
    reader = source.reader()
    for index, scene in enumerate(old):
        sample = reader.read(index, 0, 0, 0)
        for name, want in (("xyz", scene.points.xyz), ("rgb", scene.points.rgb), ("label", scene.points.label)):
            assert sample[name].dtype == want.dtype, name
            np.testing.assert_array_equal(sample[name], want, err_msg=name)
    if unit != "scenes":
        assert (sample["label"] == IGNORE_LABEL).any()
    assert reader.bytes_read > 0


def test_object_stream_holds_distinct_scheduled_objects_and_a_resumed_stream_continues_the_order(tiny_objects, ray_runtime):
    rows = split_rows(tiny_objects, "train")
    source = ObjectSource(tiny_objects, rows, seed=5, per_rank=4, world=2)
    direct = DirectSamples(source, rank=1)

    def batches(start_step):
        dataset = rank_datasets(source, start_step, 8)[rank_dataset_name(1)]
        dataset.context.execution_options.preserve_order = True
        return list(dataset.iter_batches(batch_size=4, batch_format="pyarrow"))

    uninterrupted, resumed = batches(0), batches(5)
    for step, batch in enumerate(uninterrupted):
        assert batch["step"].to_pylist() == [step] * 4
        ids = batch["sample"].to_pylist()
        both_ranks = ids + rank_samples(5, step, 0, 2, 4, len(rows)).tolist()
        assert len(set(both_ranks)) == 8  # no object twice in the step's global batch
        expected = direct.next(step)
        assert ids == expected.ids
        for want, got in zip(expected.samples, decode_samples(batch)):
            assert want.keys() == got.keys()
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])
    strip = lambda tables: [t.drop_columns(["bytes_read"]).to_pydict() for t in tables]  # noqa: E731
    assert strip(resumed) == strip(uninterrupted[5:])


def test_a_grid_checkpoint_names_the_step_of_its_run_in_progress():
    """finetune/classify checkpoints (a grid's state) say where their sample stream resumes."""
    import torch

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    in_progress = {"finished": [], "history": [], "current": run_snapshot("run", 7, model, optimizer, schedule)}
    assert checkpoint_step(in_progress) == 7
    assert checkpoint_step({"finished": ["run"], "history": [], "current": None}) is None
    assert checkpoint_step({"step": 3, "model": {}}) == 3


def test_a_sample_stream_draws_no_progress_bars(tiny_objects, ray_runtime):
    """Ray Data's bars, redrawn several times a second by the executor in each training worker, flooded the run
    log through Ray's log monitor; the setting travels with each dataset's own DataContext."""
    source = ObjectSource(tiny_objects, split_rows(tiny_objects, "train"), seed=5, per_rank=4, world=2)
    datasets = rank_datasets(source, 0, 8)
    assert len(datasets) == 2
    for dataset in datasets.values():
        assert not dataset.context.enable_progress_bars and not dataset.context.enable_operator_progress_bars
        assert sum(batch.num_rows for batch in dataset.iter_batches(batch_size=4, batch_format="pyarrow")) == 32
