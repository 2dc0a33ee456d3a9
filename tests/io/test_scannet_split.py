"""ScanNet's split: the official list files (written here as the ScanNet repository lays them out) and the
room-grouped random fallback."""

from pathlib import Path

import pytest

from pix2point.io.scannet import SceneReadError
from pix2point.io.scannet_split import grouped_random_split, official_split, read_scene_list, room_of


@pytest.fixture
def lists(tmp_path: Path) -> tuple[Path, Path]:
    train, val = tmp_path / "scannetv2_train.txt", tmp_path / "scannetv2_val.txt"
    train.write_text("scene0000_00\nscene0000_01\nscene0000_02\nscene0001_00\n")
    val.write_text("scene0011_00\nscene0011_01\n")
    return train, val


def test_official_lists_give_each_scene_its_side(lists):
    split = official_split(*lists)
    assert split == {"scene0000_00": "train", "scene0000_01": "train", "scene0000_02": "train",
                     "scene0001_00": "train", "scene0011_00": "val", "scene0011_01": "val"}


def test_missing_list_is_an_error_naming_it(lists):
    lists[1].unlink()
    with pytest.raises(SceneReadError, match=f"missing split file: {lists[1]}"):
        official_split(*lists)


def test_malformed_line_is_an_error_naming_the_file(lists):
    lists[0].write_text("scene0000_00\nscene0000-01\n")
    with pytest.raises(SceneReadError, match=f"{lists[0]}: lines that are not ScanNet scene ids .*scene0000-01"):
        read_scene_list(lists[0])


def test_a_room_on_both_sides_is_an_error(lists):
    lists[1].write_text("scene0011_00\nscene0000_03\n")  # a rescan of a training room
    with pytest.raises(SceneReadError, match=r"share scenes \[\] or rooms \['scene0000'\]"):
        official_split(*lists)


def test_room_of_a_scan():
    assert room_of("scene0000_01") == "scene0000" and room_of("Area_1_office_1") == "Area_1_office_1"


def test_random_fallback_never_splits_a_rooms_rescans_and_is_reproducible():
    scenes = [f"scene{room:04d}_{scan:02d}" for room in range(12) for scan in range(1 + room % 3)]
    for seed in range(20):
        split = grouped_random_split(scenes, val_fraction=0.25, seed=seed)
        sides = {}
        for scene, side in split.items():
            sides.setdefault(room_of(scene), set()).add(side)
        assert all(len(side) == 1 for side in sides.values())
        assert sum(side == {"val"} for side in sides.values()) == 3  # a quarter of the 12 rooms
        assert split == grouped_random_split(list(reversed(scenes)), 0.25, seed)
    assert grouped_random_split(scenes, 0.25, 0) != grouped_random_split(scenes, 0.25, 1)
    assert set(grouped_random_split(["scene0000_00", "scene0000_01"], 0.25, 0).values()) == {"train"}
