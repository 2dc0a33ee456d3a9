"""The scenes stage end to end (Ray tasks, real Parquet), read back with plain pyarrow."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from stages import scenes

from pix2point.io import scannet
from pix2point.io.scannet_split import params_split
from pix2point.io.scenes_table import read_frames, read_points


def test_synthetic_scenes_land_in_the_frames_points_and_splits_contract(tiny_scenes):
    frames = pq.read_table(tiny_scenes / "frames.parquet")
    assert frames.num_rows == 8
    assert set(frames["scene"].to_pylist()) == {"scene0000_00", "scene0001_00"}
    assert frames.schema.field("pose").type.list_size == 16
    assert frames["color_width"].to_pylist() == [96] * 8 and frames["depth_width"].to_pylist() == [64] * 8
    assert json.loads(frames.schema.metadata[b"data_root"]) == "source"
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
    assert json.loads(pq.read_table(tmp_path / "out" / "frames.parquet").schema.metadata[b"data_root"]) == str(damaged)


def test_scannet_source_needs_an_absolute_root():
    with pytest.raises(ValueError, match="needs `root`"):
        scenes.Params(source="scannet")
    with pytest.raises(ValueError, match="absolute path"):
        scenes.Params(source="scannet", root="relative/scans")


def test_unknown_validation_scene_is_an_error():
    with pytest.raises(ValueError, match=r"val_scenes \['nope'\]"):
        params_split(["a", "b"], scenes.Params(val_scenes=["nope"]))


def test_s3dis_source_writes_a_point_only_artefact_with_area5_held_out(ray_runtime, s3dis_tree, tmp_path):
    from pix2point.io.scenes_table import NoFramesError, class_names, read_splits

    root = s3dis_tree
    metrics = scenes.run(scenes.Params(source="s3dis", root=root), {}, tmp_path / "out")
    assert metrics == {"scenes": 3, "train_scenes": 2, "val_scenes": 1, "frames": 0, "points": 240, "labelled_points": 240}
    out = tmp_path / "out"
    assert read_splits(out) == {"Area_1_office_1": "train", "Area_2_WC_1": "train", "Area_5_office_3": "val"}
    assert class_names(out, "Area_5_office_3")[:3] == ["ceiling", "floor", "wall"]
    assert sorted(set(read_points(out, "Area_2_WC_1").label.tolist())) == [2, 8]  # wall, chair
    assert not (out / "frames.parquet").exists()
    with pytest.raises(NoFramesError, match="point-only .* features2d, pairs and pretrain need a frames source"):
        read_frames(out)
    (root / "Area_2" / "WC_1" / "Annotations" / "chair_1.txt").write_text("0 0 0 1 2\n")
    with pytest.raises(Exception, match="WC_1/Annotations/chair_1.txt: not rows of 6"):
        scenes.run(scenes.Params(source="s3dis", root=root), {}, tmp_path / "bad")


def test_features2d_refuses_a_point_only_scenes_artefact_naming_it(ray_runtime, s3dis_tree, tmp_path):
    from stages import features2d

    from pix2point.io.scenes_table import NoFramesError

    scenes.run(scenes.Params(source="s3dis", root=s3dis_tree), {}, tmp_path / "scenes")
    with pytest.raises(NoFramesError, match=f"{tmp_path / 'scenes' / 'frames.parquet'} does not exist"):
        features2d.run(features2d.Params(), {"scenes": tmp_path / "scenes"}, tmp_path / "features")


def test_pointcept_scannet_source_keeps_its_train_and_val_folders(ray_runtime, tmp_path):
    from pix2point.io.scenes_table import read_splits

    root = tmp_path / "scannet"
    for split, scene, count in (("train", "scene0000_00", 30), ("train", "scene0000_01", 20), ("val", "scene0011_00", 10)):
        (root / split / scene).mkdir(parents=True)
        np.save(root / split / scene / "coord.npy", np.random.default_rng(count).uniform(0, 4, (count, 3)).astype(np.float32))
        np.save(root / split / scene / "color.npy", np.full((count, 3), 128, np.uint8))
        np.save(root / split / scene / "normal.npy", np.zeros((count, 3), np.float32))
        np.save(root / split / scene / "segment20.npy", np.arange(count, dtype=np.int16) % 21 - 1)
    metrics = scenes.run(scenes.Params(source="pointcept_scannet", root=root), {}, tmp_path / "out")
    assert metrics["scenes"] == 3 and metrics["points"] == 60 and metrics["frames"] == 0
    assert read_splits(tmp_path / "out") == {"scene0000_00": "train", "scene0000_01": "train", "scene0011_00": "val"}
    points = read_points(tmp_path / "out", "scene0000_00")
    np.testing.assert_array_equal(points.xyz, np.load(root / "train" / "scene0000_00" / "coord.npy"))
    assert (points.label == -1).sum() == 2 and metrics["labelled_points"] == 60 - 2 - 1 - 1  # one -1 per 21 points
    with pytest.raises(ValueError, match="takes its scenes and split from its layout"):
        scenes.Params(source="pointcept_scannet", root=root, val_scenes=["scene0011_00"])


def test_scannet_official_split_files_set_the_split_and_leave_unlisted_scenes_out(ray_runtime, tiny_scenes, tmp_path):
    import shutil

    from pix2point.io.scenes_table import read_splits

    root = tmp_path / "scans"
    shutil.copytree(tiny_scenes / "source", root)
    shutil.copytree(root / "scene0001_00", root / "scene0707_00")  # a test scene: in neither list
    (tmp_path / "scannetv2_train.txt").write_text("scene0000_00\nscene0000_01\n")  # scene0000_01 not downloaded
    (tmp_path / "scannetv2_val.txt").write_text("scene0001_00\n")
    files = {"train": tmp_path / "scannetv2_train.txt", "val": tmp_path / "scannetv2_val.txt"}
    metrics = scenes.run(scenes.Params(source="scannet", root=root, split_files=files), {}, tmp_path / "out")
    assert metrics["scenes"] == 2 and metrics["unlisted_scenes"] == 1
    assert read_splits(tmp_path / "out") == {"scene0000_00": "train", "scene0001_00": "val"}
    assert not (tmp_path / "out" / "points" / "scene0707_00.parquet").exists()
    files["val"].unlink()
    with pytest.raises(Exception, match=f"missing split file: {files['val']}"):
        scenes.run(scenes.Params(source="scannet", root=root, split_files=files), {}, tmp_path / "out2")
    with pytest.raises(ValueError, match="only for source 'scannet'"):
        scenes.Params(split_files=files)


def test_scannet_scans_are_axis_aligned_unless_turned_off(ray_runtime, tiny_scenes, tmp_path):
    root = tiny_scenes / "source"
    on = scenes.run(scenes.Params(source="scannet", root=root, val_scenes=["scene0001_00"]), {}, tmp_path / "on")
    off = scenes.run(scenes.Params(source="scannet", root=root, val_scenes=["scene0001_00"], axis_align=False), {},
                     tmp_path / "off")
    assert on["points"] == off["points"]
    aligned, raw = (read_points(tmp_path / name, "scene0000_00").xyz for name in ("on", "off"))
    np.testing.assert_allclose(aligned[:, :2].min(axis=0), 0.0, atol=0.05)  # the room's corner at the origin
    assert not np.allclose(aligned, raw, atol=0.1)
    pose = lambda name: read_frames(tmp_path / name, ["scene0000_00"])[0].pose  # noqa: E731
    np.testing.assert_allclose(pose("on"), scannet.read_axis_alignment(root / "scene0000_00") @ pose("off"))
