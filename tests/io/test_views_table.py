"""The views2d contract: write with ViewsWriter, read with plain pyarrow and with read_views."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pix2point.io.views_table import METADATA_KEYS, Views, ViewsWriter, read_views, views_metadata, views_path, views_schema

POINTS, CHANNELS = 16, 4
METADATA = {
    "teacher": "efficientnet_lite0", "layer": "stage3", "channels": CHANNELS, "image_size": 64, "splat": 5,
    "views": [[0, 1, 2], [2, 0, 1], [1, 2, 0]], "saliency": {"method": "m", "description": "d"},
    "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear",
}


def _views(count: int, seed: int, prefix: str) -> Views:
    rng = np.random.default_rng(seed)
    return Views(
        features=rng.normal(size=(count, 3, POINTS, CHANNELS)).astype(np.float16),
        saliency=rng.random((count, 3, POINTS), dtype=np.float32),
        pixels=rng.integers(0, 64, (count, 3, POINTS, 2)).astype(np.int16),
        shapes=[f"{prefix}_{i:04d}" for i in range(count)],
    )


@pytest.fixture
def written(tmp_path):
    chunks = [("test", _views(3, 0, "t")), ("train", _views(4, 1, "a")), ("train", _views(2, 2, "b"))]
    with ViewsWriter(views_path(tmp_path), views_schema(3, POINTS, CHANNELS, METADATA)) as writer:
        for split, views in chunks:
            writer.write(views, [split] * len(views.shapes))
    return tmp_path, chunks


def test_plain_pyarrow_reads_the_declared_columns(written):
    directory, _ = written
    table = pq.read_table(directory / "views.parquet")
    assert table.column_names == ["shape", "split", "features", "saliency", "pixels"]
    expected = {"features": (pa.float16(), [3, POINTS, CHANNELS]), "saliency": (pa.float32(), [3, POINTS]),
                "pixels": (pa.int16(), [3, POINTS, 2])}
    for name, (value_type, shape) in expected.items():
        column_type = table.schema.field(name).type
        assert column_type.extension_name == "arrow.fixed_shape_tensor"
        assert (column_type.value_type, column_type.shape) == (value_type, shape)
    assert json.loads(table.schema.metadata[b"teacher"]) == "efficientnet_lite0"
    assert pq.ParquetFile(directory / "views.parquet").metadata.num_row_groups == 3  # one per chunk


def test_read_views_keeps_order_and_filters_splits(written):
    directory, chunks = written
    everything = read_views(directory)
    assert everything.shapes == [shape for _, views in chunks for shape in views.shapes]
    np.testing.assert_array_equal(everything.features, np.concatenate([views.features for _, views in chunks]))
    train = read_views(directory, "train")
    assert train.shapes == chunks[1][1].shapes + chunks[2][1].shapes
    assert train.features.shape == (6, 3, POINTS, CHANNELS) and train.features.dtype == np.float16
    assert train.saliency.dtype == np.float32 and train.pixels.dtype == np.int16
    np.testing.assert_array_equal(train.pixels, np.concatenate([chunks[1][1].pixels, chunks[2][1].pixels]))
    assert views_metadata(directory) == METADATA


def test_missing_table_and_unknown_split_are_errors_naming_the_file(written, tmp_path_factory):
    directory, _ = written
    with pytest.raises(ValueError, match=r"views\.parquet: no split 'val'"):
        read_views(directory, "val")
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match=str(empty / "views.parquet")):
        read_views(empty)


def test_a_chunk_mixing_splits_or_missing_metadata_is_refused(tmp_path):
    with pytest.raises(ValueError, match="metadata keys"):
        views_schema(3, POINTS, CHANNELS, {key: 1 for key in METADATA_KEYS if key != "views"})
    with pytest.raises(ValueError, match="one split"):
        with ViewsWriter(views_path(tmp_path), views_schema(3, POINTS, CHANNELS, METADATA)) as writer:
            writer.write(_views(2, 0, "x"), ["train", "test"])
    assert list(tmp_path.iterdir()) == []  # the failed table left nothing, not even its temporary file
