from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pydantic
import pytest
import skimage.data
import torch

import stages.features2d as features2d
from pix2point.geometry.camera import intrinsics_matrix
from pix2point.io.arrow import write_table
from pix2point.io.features_table import feature_metadata, kept_frames, read_scene_features, shard_path
from pix2point.io.scenes_table import FRAMES_FILE, Frame, frames_table
from pix2point.models.teachers import build_teacher

# Frame ids with a gap (3 was a bad frame the scenes stage skipped): frame_step counts kept frames, not ids.
SCENE_FRAMES = {"scene0000_00": [0, 1, 2, 4, 5], "scene0001_00": [0, 1, 2]}
PHOTOS = (skimage.data.astronaut, skimage.data.chelsea, skimage.data.coffee, skimage.data.rocket)
COLOR_SIZE = (160, 120)


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory) -> Path:
    """A scenes artefact of real photos (as ScanNet-style JPEG color frames) read through the real frames table."""
    root = tmp_path_factory.mktemp("scenes")
    frames = []
    for scene, frame_ids in SCENE_FRAMES.items():
        for index, frame_id in enumerate(frame_ids):
            color_path = Path(scene) / "color" / f"{frame_id}.jpg"
            photo = cv2.resize(PHOTOS[index % len(PHOTOS)](), COLOR_SIZE, interpolation=cv2.INTER_AREA)
            (root / color_path).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / color_path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
            frames.append(Frame(
                scene=scene, frame=frame_id, color_path=color_path, depth_path=Path(scene) / "depth" / f"{frame_id}.png",
                pose=np.eye(4), color_intrinsics=intrinsics_matrix(150, 150, 79.5, 59.5), color_size=COLOR_SIZE,
                depth_intrinsics=intrinsics_matrix(150, 150, 79.5, 59.5), depth_size=COLOR_SIZE, depth_scale=1000.0,
            ))
    write_table(frames_table(frames, data_root="."), root / FRAMES_FILE)
    return root


PARAMS = features2d.Params(image_size=(96, 64), frame_step=2, batch_size=2, row_group_size=2)


@pytest.fixture(scope="module")
def features_run(ray_runtime, scenes_dir, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("features2d")
    return out, features2d.run(PARAMS, {"scenes": scenes_dir}, out)


def test_every_second_kept_frame_of_each_scene_gets_a_shard_row(features_run):
    out, metrics = features_run
    assert kept_frames(out) == {"scene0000_00": [0, 2, 5], "scene0001_00": [0, 2]}
    assert (metrics["frames"], metrics["scenes"]) == (5, 2)
    assert metrics["frames_per_second"] > 0 and metrics["worker_max_rss_mb"] > 0


def test_features_are_float16_maps_of_the_layer_shape(features_run):
    out, metrics = features_run
    frames, features = read_scene_features(out, "scene0000_00")
    assert features.shape == (3, 112, 64 // 16, 96 // 16)
    assert features.dtype == np.float16
    assert metrics["feature_shape"] == [112, 4, 6]


def test_shard_metadata_records_teacher_input_and_sampling(features_run):
    out, _ = features_run
    metadata = feature_metadata(out)
    teacher = build_teacher("efficientnet_lite0", "stage5")
    assert metadata == {
        "teacher": "efficientnet_lite0", "layer": "stage5", "stride": 16, "channels": 112,
        "input_width": 96, "input_height": 64, "mean": list(teacher.mean), "std": list(teacher.std),
        "frame_step": 2,
    }


def test_row_groups_hold_row_group_size_frames(features_run):
    out, _ = features_run
    parquet = pq.ParquetFile(shard_path(out, "scene0000_00"))
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)] == [2, 1]
    assert not list(out.rglob("*.partial"))


def test_features_equal_the_teachers_own_output(features_run, scenes_dir):
    out, _ = features_run
    frames, features = read_scene_features(out, "scene0000_00")
    row = list(frames).index(5)
    # Decoded and normalised here by hand, so a channel-order or normalisation slip in the stage shows.
    teacher = build_teacher("efficientnet_lite0", "stage5")
    photo = cv2.cvtColor(cv2.imread(str(scenes_dir / "scene0000_00" / "color" / "5.jpg")), cv2.COLOR_BGR2RGB)
    pixels = cv2.resize(photo, (96, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    pixels = (pixels - np.array(teacher.mean, np.float32)) / np.array(teacher.std, np.float32)
    with torch.inference_mode():
        expected = teacher(torch.from_numpy(pixels).permute(2, 0, 1)[None])[0].numpy()
    np.testing.assert_allclose(features[row].astype(np.float32), expected, rtol=2e-3, atol=2e-3)
    assert np.abs(expected).max() > 0.1  # not trivially close


def test_unreadable_color_image_is_an_error_naming_it(ray_runtime, scenes_dir, tmp_path):
    broken_scenes = tmp_path / "scenes"
    shutil.copytree(scenes_dir, broken_scenes)
    broken_image = broken_scenes / "scene0001_00" / "color" / "2.jpg"
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
