from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import stages.pairs
from pix2point.geometry.camera import intrinsics_matrix, look_at
from pix2point.io.arrow import tensor_column, write_table
from pix2point.io.features_table import shard_path
from pix2point.io.pairs_table import pairs_metadata, read_scene_pairs
from pix2point.io.scenes_table import (
    FRAMES_FILE,
    Frame,
    ScenePoints,
    frames_table,
    points_path,
    points_table,
    read_frames,
    read_points,
    scene_names,
)

SCENE = "scene0000_00"
DEPTH_K, DEPTH_SIZE = intrinsics_matrix(50.0, 50.0, 31.5, 23.5), (64, 48)
COLOR_K, COLOR_SIZE = intrinsics_matrix(60.0, 60.0, 47.3, 35.8), (96, 72)
WALL_Y, EYE_HEIGHT = 3.0, 1.5
CAMERA_X = {0: 0.0, 10: 0.5, 20: 1.0}  # frame id -> camera position along x, all looking at the wall (+y)
KEPT = [0, 10]  # frame 20 has no depth image on disk: reading it would fail the run


def scene_points() -> np.ndarray:
    """A wall grid every camera sees, one wall point only frame 0 sees, and three points no camera sees."""
    xs, zs = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(1, 2, 5))
    wall = np.column_stack([xs.ravel(), np.full(xs.size, WALL_Y), zs.ravel()])
    only_frame_0 = [-1.8, WALL_Y, EYE_HEIGHT]  # inside frame 0's depth image, left of frame 10's
    behind_wall, far_right, behind_cameras = [0.2, WALL_Y + 1, EYE_HEIGHT], [6.0, WALL_Y, EYE_HEIGHT], [0.0, -2.0, EYE_HEIGHT]
    return np.vstack([wall, [only_frame_0, behind_wall, far_right, behind_cameras]]).astype(np.float32)


def expected_pixel(point: np.ndarray, frame_id: int) -> tuple[int, int]:
    """Fronto-parallel camera at (CAMERA_X, 0, EYE_HEIGHT): x right, z up, y depth, written out by hand."""
    depth = point[1]
    u = 60.0 * (point[0] - CAMERA_X[frame_id]) / depth + 47.3
    v = 60.0 * (EYE_HEIGHT - point[2]) / depth + 35.8
    return int(np.floor(u + 0.5)), int(np.floor(v + 0.5))


def write_frames(scenes_dir: Path) -> None:
    frames = []
    for frame_id, x in CAMERA_X.items():
        eye = np.array([x, 0.0, EYE_HEIGHT])
        frames.append(Frame(
            scene=SCENE, frame=frame_id, color_path=Path(f"{SCENE}/color/{frame_id}.jpg"),
            depth_path=Path(f"{SCENE}/depth/{frame_id}.png"), pose=look_at(eye, eye + [0.0, 1.0, 0.0]),
            color_intrinsics=COLOR_K, color_size=COLOR_SIZE, depth_intrinsics=DEPTH_K, depth_size=DEPTH_SIZE,
            depth_scale=1000.0,
        ))
    write_table(frames_table(frames, data_root="source"), scenes_dir / FRAMES_FILE)


def write_wall_depth(scenes_dir: Path, frame_id: int) -> None:
    # The wall fills the view and faces the camera, so every pixel measures its distance (millimetres).
    path = scenes_dir / "source" / SCENE / "depth" / f"{frame_id}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full(DEPTH_SIZE[::-1], WALL_Y * 1000, np.uint16))


def write_features(features_dir: Path, frames: list[int], scene: str = SCENE) -> None:
    """A features2d shard that keeps `frames` (kept_frames reads only the frame ids)."""
    table = {"scene": [scene] * len(frames), "frame": pa.array(frames, pa.int32()),
             "features": tensor_column(np.zeros((len(frames), 4, 2, 3), np.float16))}
    write_table(pa.table(table), shard_path(features_dir, scene))


@pytest.fixture(scope="module")
def tiny_inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pairs_inputs")
    xyz = scene_points()
    rgb = (np.arange(len(xyz))[:, None] * [1, 2, 5]).astype(np.uint8)  # distinct per point
    points = ScenePoints(xyz=xyz, rgb=rgb, label=np.zeros(len(xyz), np.int16))
    points_path(root / "scenes", SCENE).parent.mkdir(parents=True)
    write_table(points_table(points, ("wall",)), points_path(root / "scenes", SCENE))
    write_frames(root / "scenes")
    for frame_id in KEPT:
        write_wall_depth(root / "scenes", frame_id)
    write_features(root / "features2d", KEPT)
    return {"scenes": root / "scenes", "features2d": root / "features2d"}


def test_stage_pairs_each_kept_frame_with_the_wall_points_it_sees(ray_runtime, tiny_inputs, tmp_path):
    metrics = stages.pairs.run(stages.pairs.Params(), tiny_inputs, tmp_path)

    table = pq.read_table(tmp_path / "pairs" / f"{SCENE}.parquet")  # plain pyarrow reads the contract
    assert table.schema.names == ["frame", "point_index", "u", "v"]
    assert [str(t) for t in table.schema.types] == ["int32", "int32", "int16", "int16"]
    rows = set(zip(*(table[name].to_pylist() for name in table.schema.names)))
    xyz = scene_points()
    expected = {(f, i, *expected_pixel(xyz[i], f)) for f in KEPT for i in range(45)} | {(0, 45, *expected_pixel(xyz[45], 0))}
    assert rows == expected
    straight_ahead = int(np.flatnonzero(np.all(xyz == [0.0, WALL_Y, EYE_HEIGHT], axis=1))[0])
    assert (0, straight_ahead, 47, 36) in rows  # lands on frame 0's color principal point (47.3, 35.8)
    assert metrics["scenes"] == 1 and metrics["frames"] == 2 and metrics["pairs"] == 91
    assert metrics["unseen_point_share"] == pytest.approx(3 / 49, abs=1e-4)
    assert metrics["frames_without_pairs"] == 0


def test_stage_writes_one_samples_row_group_per_frame_with_its_points_pixels_and_map_location(
        ray_runtime, tiny_inputs, tmp_path):
    stages.pairs.run(stages.pairs.Params(), tiny_inputs, tmp_path)

    parquet = pq.ParquetFile(tmp_path / "samples" / f"{SCENE}.parquet")  # plain pyarrow reads the contract
    assert parquet.metadata.num_row_groups == 2
    xyz, rgb = scene_points(), read_points(tiny_inputs["scenes"], SCENE).rgb
    for group, frame_id in enumerate(KEPT):
        row = parquet.read_row_group(group).to_pylist()[0]
        seen = list(range(45)) + ([45] if frame_id == 0 else [])
        assert (row["scene"], row["frame"], row["points"], row["point_index"]) == (SCENE, frame_id, len(seen), seen)
        np.testing.assert_array_equal(np.array(row["xyz"], np.float32), xyz[seen])
        np.testing.assert_array_equal(np.array(row["rgb"], np.uint8), rgb[seen])
        assert list(zip(row["u"], row["v"])) == [expected_pixel(xyz[i], frame_id) for i in seen]
        assert (row["color_width"], row["color_height"]) == COLOR_SIZE
        assert (row["features_row_group"], row["features_row"]) == (0, group)  # write_features: one row group


def test_stage_output_reads_back_sorted_with_its_occlusion_settings(ray_runtime, tiny_inputs, tmp_path):
    stages.pairs.run(stages.pairs.Params(depth_tolerance=0.02, depth_tolerance_relative=0.0), tiny_inputs, tmp_path)

    pairs = read_scene_pairs(tmp_path, SCENE)
    order = np.lexsort([pairs.point_index, pairs.frame])
    assert np.array_equal(order, np.arange(len(pairs)))
    metadata = pairs_metadata(tmp_path, SCENE)
    assert metadata["depth_tolerance"] == 0.02 and metadata["depth_tolerance_relative"] == 0.0
    assert "floor(coordinate + 0.5)" in metadata["depth_lookup"]
    assert [p.name for p in (tmp_path / "pairs").iterdir()] == [f"{SCENE}.parquet"]  # no temporary left


def test_stage_names_the_unreadable_depth_image(ray_runtime, tiny_inputs, tmp_path):
    broken = tmp_path / "inputs"
    write_features(broken / "features2d", [0, 20])  # frame 20's depth image does not exist
    inputs = {"scenes": tiny_inputs["scenes"], "features2d": broken / "features2d"}
    with pytest.raises(ValueError, match=f"{SCENE}/depth/20.png"):
        stages.pairs.run(stages.pairs.Params(), inputs, tmp_path / "out")


def test_stage_rejects_a_kept_frame_the_scenes_artefact_lacks(ray_runtime, tiny_inputs, tmp_path):
    write_features(tmp_path / "features2d", [0, 99])
    with pytest.raises(ValueError, match=r"frames \[99\] of scene 'scene0000_00'"):
        stages.pairs.run(stages.pairs.Params(), {**tiny_inputs, "features2d": tmp_path / "features2d"}, tmp_path / "out")


def test_stage_pairs_every_kept_frame_of_synthetic_rooms(ray_runtime, tiny_scenes, tmp_path):
    kept = {scene: sorted({f.frame for f in read_frames(tiny_scenes, [scene])})[::2] for scene in scene_names(tiny_scenes)}
    for scene, frames in kept.items():
        write_features(tmp_path / "features2d", frames, scene)

    metrics = stages.pairs.run(stages.pairs.Params(), {"scenes": tiny_scenes, "features2d": tmp_path / "features2d"},
                               tmp_path / "pairs")

    assert metrics["frames"] == sum(map(len, kept.values())) and metrics["frames_without_pairs"] == 0
    assert 0 < metrics["unseen_point_share"] < 1
    for scene, frames in kept.items():
        pairs = read_scene_pairs(tmp_path / "pairs", scene)
        color_width, color_height = read_frames(tiny_scenes, [scene])[0].color_size
        assert sorted(set(pairs.frame.tolist())) == frames
        assert pairs.point_index.max() < len(read_points(tiny_scenes, scene).xyz)
        assert pairs.pixel.min() >= 0 and pairs.pixel[:, 0].max() < color_width and pairs.pixel[:, 1].max() < color_height


def depth_frame(path: Path) -> Frame:
    return Frame(scene=SCENE, frame=0, color_path=Path("unused.jpg"), depth_path=path, pose=np.eye(4),
                 color_intrinsics=COLOR_K, color_size=COLOR_SIZE, depth_intrinsics=DEPTH_K, depth_size=DEPTH_SIZE,
                 depth_scale=1000.0)


def test_depth_image_is_read_in_metres(tmp_path):
    path = tmp_path / "depth.png"
    depth_mm = np.full(DEPTH_SIZE[::-1], 2500, np.uint16)
    depth_mm[3, 4] = 0
    cv2.imwrite(str(path), depth_mm)
    depth_m = stages.pairs.read_depth_metres(depth_frame(path))
    assert depth_m.dtype == np.float32 and depth_m[0, 0] == pytest.approx(2.5) and depth_m[3, 4] == 0


@pytest.mark.parametrize("content, message", [
    (b"not a png", "missing or not a readable image"),
    (cv2.imencode(".png", np.zeros((48, 64), np.uint8))[1].tobytes(), "expected one 16-bit channel"),
    (cv2.imencode(".png", np.zeros((40, 64), np.uint16))[1].tobytes(), "is 64x40, the frames table says 64x48"),
])
def test_bad_depth_image_is_an_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad_depth.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        stages.pairs.read_depth_metres(depth_frame(path))
    assert str(path) in str(error.value)
