"""The scenes stage end to end (Ray tasks, real Parquet), read back with plain pyarrow."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from stages import scenes

from pix2point.io.scenes_table import read_frames, read_points


def test_synthetic_scenes_land_in_the_frames_points_and_splits_contract(tiny_scenes):
    frames = pq.read_table(tiny_scenes / "frames.parquet")
    assert frames.num_rows == 8
    assert set(frames["scene"].to_pylist()) == {"scene0000_00", "scene0001_00"}
    assert frames.schema.field("pose").type.list_size == 16
    assert frames["color_width"].to_pylist() == [96] * 8 and frames["depth_width"].to_pylist() == [64] * 8
    assert frames.schema.metadata[b"data_root"] == b"source"
    points = pq.read_table(tiny_scenes / "points" / "scene0000_00.parquet")
    assert points.num_rows == 4000 and points.schema.field("label").type == "int16"
    assert len(json.loads(points.schema.metadata[b"class_names"])) == 20
    splits = dict(zip(*pq.read_table(tiny_scenes / "splits.parquet").to_pydict().values()))
    assert sorted(splits.values()) == ["train", "val"]


def test_frame_paths_resolve_inside_the_artefact(tiny_scenes):
    frame = read_frames(tiny_scenes, ["scene0001_00"])[0]
    assert frame.color_path.is_file() and frame.depth_path.is_file()
    assert str(frame.color_path).startswith(str(tiny_scenes / "source"))
    assert read_points(tiny_scenes, "scene0001_00").xyz.dtype == np.float32


def test_scannet_source_counts_skipped_frames_in_the_metrics(ray_runtime, tiny_scenes, tmp_path):
    root = tiny_scenes / "source"
    damaged = tmp_path / "scannet"
    import shutil

    shutil.copytree(root, damaged)
    (damaged / "scene0000_00" / "pose" / "2.txt").write_text("-inf -inf -inf -inf\n" * 4)
    metrics = scenes.run(scenes.Params(source="scannet", root=damaged, val_scenes=["scene0001_00"]), {}, tmp_path / "out")
    assert metrics["frames"] == 7 and metrics["skipped_frames_by_reason"] == {"nonfinite_pose": 1}
    assert pq.read_table(tmp_path / "out" / "frames.parquet").schema.metadata[b"data_root"].decode() == str(damaged)


def test_scannet_source_needs_an_absolute_root():
    with pytest.raises(ValueError, match="needs `root`"):
        scenes.Params(source="scannet")
    with pytest.raises(ValueError, match="absolute path"):
        scenes.Params(source="scannet", root="relative/scans")


def test_unknown_validation_scene_is_an_error():
    with pytest.raises(ValueError, match=r"val_scenes \['nope'\]"):
        scenes.assign_splits(["a", "b"], scenes.Params(val_scenes=["nope"]))
