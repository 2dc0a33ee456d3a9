from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pydantic
import pytest
import torch

import stages.features2d as features2d
from pix2point.io.features_table import (
    feature_metadata,
    kept_frames,
    read_scene_features,
    read_scene_mirrored_features,
    shard_path,
)
from pix2point.io.scenes_table import Frame, read_frames
from pix2point.models.teachers import build_teacher

PARAMS = features2d.Params(image_size=(96, 64), frame_step=2, batch_size=2, row_group_size=1)


@pytest.fixture(scope="module")
def features_run(ray_runtime, tiny_scenes, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("features2d")
    return out, features2d.run(PARAMS, {"scenes": tiny_scenes}, out)


def frame(scene: str, frame_id: int) -> Frame:
    return Frame(
        scene=scene, frame=frame_id, color_path=Path(f"{scene}/color/{frame_id}.jpg"), depth_path=Path("unused.png"),
        pose=np.eye(4), color_intrinsics=np.eye(3), color_size=(96, 72), depth_intrinsics=np.eye(3),
        depth_size=(64, 48), depth_scale=1000.0,
    )


def test_frame_step_counts_a_scenes_frames_in_order_and_batches_stay_in_one_scene():
    # Frame 3 of scene "a" is missing (a bad frame the scenes stage skipped): every 2nd frame is taken among
    # the frames there are, so no scene ends up without frames.
    frames = [frame("b", 1), frame("a", 5), frame("a", 0), frame("a", 4), frame("a", 2), frame("a", 1), frame("b", 0)]
    batches = features2d.plan_batches(frames, frame_step=2, batch_size=2)
    assert [(batch.scene, batch.frames.tolist()) for batch in batches] == [("a", [0, 2]), ("a", [5]), ("b", [0])]
    assert batches[1].color_paths == [Path("a/color/5.jpg")]


def test_scenes_are_dealt_whole_to_balanced_workers():
    frames = [frame("a", i) for i in range(6)] + [frame("b", i) for i in range(4)] + [frame("c", i) for i in range(3)]
    groups = features2d.group_scenes(features2d.plan_batches(frames, 1, batch_size=4), num_groups=2)
    assert [sorted({batch.scene for batch in group}) for group in groups] == [["a"], ["b", "c"]]


def test_by_default_one_single_cpu_task_per_cpu_of_the_cluster_at_most_one_per_scene(features_run):
    import ray

    _, metrics = features_run
    assert metrics["cpus_per_worker"] == 1  # a multi-CPU task starves behind 1-CPU trainers
    assert metrics["workers"] == min(metrics["scenes"], int(ray.cluster_resources()["CPU"])) == 2


def test_every_second_frame_of_each_scene_gets_a_shard_row(features_run, tiny_scenes):
    out, metrics = features_run
    frame_ids = {}
    for scene_frame in read_frames(tiny_scenes):
        frame_ids.setdefault(scene_frame.scene, []).append(scene_frame.frame)
    assert kept_frames(out) == {scene: sorted(ids)[::2] for scene, ids in frame_ids.items()}
    assert (metrics["frames"], metrics["scenes"]) == (sum(len(ids[::2]) for ids in frame_ids.values()), 2)
    assert metrics["frames_per_second"] > 0 and metrics["worker_max_rss_mb"] > 0


def test_features_are_float16_maps_of_the_layer_shape(features_run):
    out, metrics = features_run
    frames, features = read_scene_features(out, "scene0000_00")
    assert features.shape == (len(frames), 112, 64 // 16, 96 // 16)
    assert features.dtype == np.float16
    assert metrics["feature_shape"] == [112, 4, 6]


def test_shard_metadata_records_teacher_input_and_sampling(features_run):
    out, _ = features_run
    metadata = feature_metadata(out)
    teacher = build_teacher("efficientnet_lite0", "stage5")
    assert metadata == {
        "teacher": "efficientnet_lite0", "layer": "stage5", "stride": 16, "channels": 112,
        "input_width": 96, "input_height": 64, "mean": list(teacher.mean), "std": list(teacher.std),
        "frame_step": 2, "mirrored": True,
    }


def test_row_groups_hold_row_group_size_frames_not_a_batch(features_run):
    out, _ = features_run
    parquet = pq.ParquetFile(shard_path(out, "scene0000_00"))
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)] == [1, 1]
    assert not list(out.rglob("*.partial"))


def test_features_equal_the_teachers_own_output(features_run, tiny_scenes):
    out, _ = features_run
    frames, features = read_scene_features(out, "scene0001_00")
    color_path = next(f.color_path for f in read_frames(tiny_scenes, ["scene0001_00"]) if f.frame == frames[-1])
    # Decoded and normalised here by hand, so a channel-order or normalisation slip in the stage shows.
    teacher = build_teacher("efficientnet_lite0", "stage5")
    photo = cv2.cvtColor(cv2.imread(str(color_path)), cv2.COLOR_BGR2RGB)
    pixels = cv2.resize(photo, (96, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    pixels = (pixels - np.array(teacher.mean, np.float32)) / np.array(teacher.std, np.float32)
    with torch.inference_mode():
        expected = teacher(torch.from_numpy(pixels).permute(2, 0, 1)[None])[0].numpy()
    np.testing.assert_allclose(features[-1].astype(np.float32), expected, rtol=2e-3, atol=2e-3)
    assert np.abs(expected).max() > 0.1  # not trivially close
    # The mirrored column is the teacher's map of the image mirrored by hand, not the mirrored map.
    with torch.inference_mode():
        expected_mirrored = teacher(torch.from_numpy(pixels[:, ::-1].copy()).permute(2, 0, 1)[None])[0].numpy()
    mirrored = read_scene_mirrored_features(out, "scene0001_00")
    np.testing.assert_allclose(mirrored[-1].astype(np.float32), expected_mirrored, rtol=2e-3, atol=2e-3)
    assert np.abs(expected_mirrored - expected[:, :, ::-1]).max() > 0.1


def test_without_mirrored_the_shards_have_no_mirrored_column(ray_runtime, tiny_scenes, tmp_path):
    features2d.run(PARAMS.model_copy(update={"mirrored": False}), {"scenes": tiny_scenes}, tmp_path)
    assert pq.read_schema(shard_path(tmp_path, "scene0000_00")).names == ["scene", "frame", "features"]
    with pytest.raises(ValueError, match="scene0000_00.parquet has no 'features_mirrored' column"):
        read_scene_mirrored_features(tmp_path, "scene0000_00")


def test_unreadable_color_image_is_an_error_naming_it(ray_runtime, tiny_scenes, tmp_path):
    broken_scenes = tmp_path / "scenes"
    shutil.copytree(tiny_scenes, broken_scenes)
    broken_image = read_frames(broken_scenes, ["scene0001_00"])[2].color_path
    broken_image.write_bytes(b"not a jpeg")
    out = tmp_path / "features2d"
    out.mkdir()
    with pytest.raises(ValueError, match=f"cannot read color image {broken_image}"):
        features2d.run(PARAMS, {"scenes": broken_scenes}, out)
    assert not list(out.rglob("*.partial"))


def test_unknown_layer_is_rejected_naming_the_teachers_layers():
    with pytest.raises(pydantic.ValidationError, match=r"no layer 'layer4'.*stage3.*stage5.*stage7.*head"):
        features2d.Params(teacher="efficientnet_lite0", layer="layer4")


def test_image_size_must_be_a_multiple_of_the_stride():
    with pytest.raises(pydantic.ValidationError, match="multiples of the stride 16"):
        features2d.Params(image_size=(100, 64))


def test_resnet_teacher_needs_a_weights_file():
    with pytest.raises(pydantic.ValidationError, match="resnet50 needs teacher_weights"):
        features2d.Params(teacher="resnet50", image_size=(640, 480))


def test_teacher_weights_path_must_be_absolute():
    with pytest.raises(pydantic.ValidationError, match="teacher_weights must be an absolute path"):
        features2d.Params(teacher="resnet18", teacher_weights="weights/resnet18.pth", image_size=(640, 480))


def test_asking_for_gpus_the_cluster_lacks_is_an_error_not_a_task_that_waits_for_ever(ray_runtime, tiny_scenes, tmp_path):
    with pytest.raises(ValueError, match="gpus_per_worker=1.0 but the Ray cluster has 0 GPUs"):
        features2d.run(features2d.Params(gpus_per_worker=1), {"scenes": tiny_scenes}, tmp_path)
