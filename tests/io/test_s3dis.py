"""The S3DIS reader on a small Stanford3dDataset_v1.2_Aligned_Version tree written here, intact and damaged."""

from pathlib import Path

import numpy as np
import pytest

from pix2point.io import s3dis
from pix2point.io.s3dis import S3DISReadError

OBJECTS = {  # room -> its object files (class_i), each with a few rows
    ("Area_1", "office_1"): ["chair_1", "wall_1", "wall_2", "stairs_1"],
    ("Area_5", "hallway_1"): ["floor_1", "clutter_3"],
}


def write_object(path: Path, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.hstack([rng.uniform(-5, 5, (rows, 3)).round(3), rng.integers(0, 256, (rows, 3))])
    path.write_text("".join(f"{x:.3f} {y:.3f} {z:.3f} {r:.0f} {g:.0f} {b:.0f}\n" for x, y, z, r, g, b in values))
    return values


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "Stanford3dDataset_v1.2_Aligned_Version"
    for seed, ((area, room), names) in enumerate(OBJECTS.items()):
        annotations = root / area / room / "Annotations"
        annotations.mkdir(parents=True)
        (root / area / room / f"{room}.txt").write_text("")  # the room file, not read
        for i, name in enumerate(names):
            write_object(annotations / f"{name}.txt", rows=3 + i, seed=10 * seed + i)
    (root / "Area_1" / ".DS_Store").write_text("")
    return root


def test_rooms_are_named_by_area_and_room(root):
    rooms = s3dis.list_rooms(root)
    assert list(rooms) == ["Area_1_office_1", "Area_5_hallway_1"]
    assert rooms["Area_5_hallway_1"] == root / "Area_5" / "hallway_1"
    assert [s3dis.area_of(name) for name in rooms] == [1, 5]


def test_room_points_are_its_objects_labelled_by_file_name_stairs_as_clutter(root):
    points = s3dis.read_room(root / "Area_1" / "office_1")
    # files sorted by name: chair_1 (3 rows), stairs_1 (6), wall_1 (4), wall_2 (5)
    names = s3dis.S3DIS13_CLASS_NAMES
    assert [names[label] for label in points.label] == ["chair"] * 3 + ["clutter"] * 6 + ["wall"] * 9
    assert points.xyz.shape == (18, 3) and points.xyz.dtype == np.float32 and points.rgb.dtype == np.uint8
    chair = np.loadtxt(root / "Area_1" / "office_1" / "Annotations" / "chair_1.txt")
    np.testing.assert_allclose(points.xyz[:3], chair[:, :3], atol=1e-5)
    np.testing.assert_array_equal(points.rgb[:3], chair[:, 3:])


def test_malformed_row_is_an_error_naming_the_file(root):
    # the published Area_5/hallway_6/Annotations/ceiling_1.txt has such a row
    path = root / "Area_5" / "hallway_1" / "Annotations" / "floor_1.txt"
    path.write_text(path.read_text() + "1.0 2.0 3.0 10 10\x10 10\n")
    with pytest.raises(S3DISReadError, match=f"{path}: not rows of 6 space-separated numbers"):
        s3dis.read_room(root / "Area_5" / "hallway_1")


def test_short_row_and_bad_colour_are_errors_naming_the_file(root):
    path = root / "Area_1" / "office_1" / "Annotations" / "wall_2.txt"
    path.write_text("1.0 2.0 3.0 10 10\n")
    with pytest.raises(S3DISReadError, match=f"{path}: not rows of 6"):
        s3dis.read_object_rows(path)
    path.write_text("1.0 2.0 3.0 10 10 300\n")
    with pytest.raises(S3DISReadError, match=f"{path}: colours outside 0..255"):
        s3dis.read_object_rows(path)


def test_missing_files_are_errors_naming_them(root):
    path = root / "Area_1" / "office_1" / "Annotations" / "chair_9.txt"
    with pytest.raises(S3DISReadError, match=f"missing file: {path}"):
        s3dis.read_object_rows(path)
    annotations = root / "Area_5" / "hallway_1" / "Annotations"
    for file in annotations.iterdir():
        file.unlink()
    with pytest.raises(S3DISReadError, match=f"{annotations}: no object files"):
        s3dis.read_room(root / "Area_5" / "hallway_1")


def test_root_without_rooms_is_an_error(tmp_path):
    with pytest.raises(S3DISReadError, match="no rooms"):
        s3dis.list_rooms(tmp_path)


def test_a_room_far_from_the_origin_is_moved_near_it_and_keeps_its_centimetres(tmp_path, caplog):
    """A georeferenced room (PRBonn/segcontrast#10): at 1e6 m float32 steps 6.25 cm, so parsing to float32
    merged these points 10 cm apart."""
    annotations = tmp_path / "Area_1" / "office_1" / "Annotations"
    annotations.mkdir(parents=True)
    xyz = np.array([[1e6, 2e6, 10.0], [1e6 + 0.1, 2e6, 10.0], [1e6 + 0.2, 2e6 + 0.1, 10.05]])
    (annotations / "chair_1.txt").write_text("".join(f"{x:.3f} {y:.3f} {z:.3f} 1 2 3\n" for x, y, z in xyz))
    points = s3dis.read_room(tmp_path / "Area_1" / "office_1")
    assert points.xyz.dtype == np.float32 and np.abs(points.xyz).max() < 2  # moved by the whole metres of its minimum
    np.testing.assert_allclose(points.xyz - points.xyz[0], xyz - xyz[0], atol=1e-5)
    assert f"{annotations}: coordinates reach 2e+06 m from the origin; shifted by [1000000.0, 2000000.0, 10.0] m" in caplog.text


def test_a_room_near_the_origin_stays_where_it_is(root):
    chair = np.loadtxt(root / "Area_1" / "office_1" / "Annotations" / "chair_1.txt")
    np.testing.assert_array_equal(s3dis.read_room(root / "Area_1" / "office_1").xyz[:3], chair[:, :3].astype(np.float32))
