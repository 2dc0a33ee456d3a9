import numpy as np
import pyarrow.parquet as pq
import pytest

from pix2point.io import pairs_table
from pix2point.io.pairs_table import ScenePairs, ScenePairsWriter, pairs_metadata, pairs_scenes, read_scene_pairs

METADATA = {"depth_tolerance": 0.05, "depth_tolerance_relative": 0.01, "max_depth": 10.0, "depth_lookup": "nearest"}


def frame_pairs(frame: int, count: int) -> ScenePairs:
    return ScenePairs(frame=np.full(count, frame, np.int32), point_index=np.arange(count, dtype=np.int32),
                      pixel=np.column_stack([np.arange(count), np.arange(count) * 2]).astype(np.int16))


def test_writer_streams_frames_into_full_row_groups_and_reads_back(tmp_path, monkeypatch):
    monkeypatch.setattr(pairs_table, "ROW_GROUP_SIZE", 5)
    with ScenePairsWriter(tmp_path, "scene0001_00", METADATA) as writer:
        for frame, count in [(0, 3), (1, 4), (2, 0), (3, 6)]:
            writer.write(frame_pairs(frame, count))

    metadata = pq.ParquetFile(tmp_path / "pairs" / "scene0001_00.parquet").metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [5, 5, 3]
    pairs = read_scene_pairs(tmp_path, "scene0001_00")
    assert pairs.frame.tolist() == [0] * 3 + [1] * 4 + [3] * 6
    assert pairs.point_index.tolist() == [0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5]
    assert pairs.pixel[-1].tolist() == [5, 10] and pairs.pixel.dtype == np.int16
    assert pairs_metadata(tmp_path, "scene0001_00") == METADATA


def test_scene_without_pairs_still_gets_a_readable_shard(tmp_path):
    with ScenePairsWriter(tmp_path, "scene0002_00", METADATA) as writer:
        writer.write(frame_pairs(0, 0))
    assert pairs_scenes(tmp_path) == ["scene0002_00"]
    assert len(read_scene_pairs(tmp_path, "scene0002_00")) == 0


def test_an_error_while_writing_leaves_no_shard_and_no_temporary(tmp_path):
    with pytest.raises(RuntimeError, match="depth image broke"):
        with ScenePairsWriter(tmp_path, "scene0003_00", METADATA) as writer:
            writer.write(frame_pairs(0, 3))
            raise RuntimeError("depth image broke")
    assert list((tmp_path / "pairs").iterdir()) == []


def test_pixel_beyond_int16_is_an_error_not_a_wrap_around(tmp_path):
    too_wide = ScenePairs(np.zeros(1, np.int32), np.zeros(1, np.int32), np.array([[40_000, 3]], np.int64))
    with pytest.raises(ValueError, match="40000 does not fit"):
        pairs_table.pairs_table(too_wide)
