"""Random room layouts: a box-shaped room and non-overlapping furniture on its floor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pix2point.synthetic.boxes import Boxes, rotate_about_z
from pix2point.synthetic.footprints import Footprint, inside_room, overlap
from pix2point.synthetic.furniture import CHAIR_KIND, FURNITURE_KINDS, FurnitureKind
from pix2point.synthetic.shading import Materials
from pix2point.synthetic.surface_classes import FLOOR, WALL, class_index

ROOM_MIN_SIZE = (4.2, 3.8, 2.5)  # (x, y, height) metres
ROOM_MAX_SIZE = (6.5, 5.5, 3.0)
CLEARANCE = 0.15  # free floor kept between pieces of furniture
PLACEMENT_ATTEMPTS = 60
WALL_MATERIAL, FLOOR_MATERIAL = 0, 1
ROOM_BOX = 0


@dataclass(frozen=True)
class Placement:
    kind: FurnitureKind
    size: np.ndarray  # [3] width, depth, height
    footprint: Footprint


@dataclass(frozen=True)
class SceneLayout:
    room_size: np.ndarray  # [3]; the room spans [0, room_size], floor at z = 0
    boxes: Boxes  # box ROOM_BOX (first) is the room's interior, the others furniture parts
    materials: Materials  # material 0 the walls, 1 the floor, then one per piece of furniture
    placements: tuple[Placement, ...]

    @property
    def room(self) -> Boxes:
        return self.boxes.select(np.array([ROOM_BOX]))

    @property
    def furniture(self) -> Boxes:
        """Furniture box i is box i + 1 of the layout."""
        return self.boxes.select(np.arange(ROOM_BOX + 1, len(self.boxes)))

    def box_owner(self) -> np.ndarray:
        """[len(boxes)] the placement each box is a part of; -1 for the room."""
        parts = [len(p.kind.parts(*p.size)[1]) for p in self.placements]
        return np.concatenate([[-1], np.repeat(np.arange(len(parts)), parts)]).astype(np.int64)


def choose_kinds(rng: np.random.Generator) -> list[FurnitureKind]:
    """4 to 7 distinct kinds, then up to 2 more pieces of any kind and up to 2 more chairs.

    Wall-standing and large pieces come first, as they are the hardest to fit.
    """
    distinct = rng.integers(4, len(FURNITURE_KINDS) + 1)
    kinds = [FURNITURE_KINDS[i] for i in rng.choice(len(FURNITURE_KINDS), distinct, replace=False)]
    kinds += [FURNITURE_KINDS[i] for i in rng.choice(len(FURNITURE_KINDS), rng.integers(0, 3))]
    kinds += [CHAIR_KIND] * int(rng.integers(0, 3))
    return sorted(kinds, key=lambda kind: (not kind.against_wall, -kind.max_size[0] * kind.max_size[1]))


def random_footprint(kind: FurnitureKind, size: np.ndarray, room_xy: np.ndarray, rng: np.random.Generator) -> Footprint:
    half = size[:2] / 2
    if not kind.against_wall:
        return Footprint(rng.uniform(half.max(), room_xy - half.max()), half, float(rng.uniform(0, 2 * np.pi)))
    # Walls in order y = 0, x = max, y = max, x = 0; yaw k * 90 degrees turns the back (-y) to wall k.
    wall = int(rng.integers(4))
    yaw = wall * np.pi / 2
    along, across = (room_xy[0], room_xy[1]) if wall % 2 == 0 else (room_xy[1], room_xy[0])
    offset_in_wall_frame = (rng.uniform(half[0], along - half[0]) - along / 2, half[1] - across / 2)
    offset = rotate_about_z(np.array([[*offset_in_wall_frame, 0.0]]), yaw)[0, :2]
    return Footprint(room_xy / 2 + offset, half, yaw)


def place_furniture(kinds: list[FurnitureKind], room_xy: np.ndarray, rng: np.random.Generator) -> list[Placement]:
    """Rejection sampling: a piece that finds no free spot in PLACEMENT_ATTEMPTS tries is left out."""
    placed: list[Placement] = []
    for kind in kinds:
        size = kind.random_size(rng)
        for _ in range(PLACEMENT_ATTEMPTS):
            footprint = random_footprint(kind, size, room_xy, rng)
            if inside_room(footprint, room_xy) and not any(overlap(footprint, p.footprint, CLEARANCE) for p in placed):
                placed.append(Placement(kind, size, footprint))
                break
    return placed


def room_box(room_size: np.ndarray) -> Boxes:
    return Boxes(
        centres=room_size[None] / 2,
        half_sizes=room_size[None] / 2,
        yaws=np.zeros(1),
        materials=np.array([[WALL_MATERIAL, WALL_MATERIAL, FLOOR_MATERIAL]]),
        interior=np.array([True]),
    )


def placement_boxes(placement: Placement, material: int) -> Boxes:
    local_centres, half_sizes = placement.kind.parts(*placement.size)
    yaw = placement.footprint.yaw
    position = np.array([*placement.footprint.centre, 0.0])
    count = len(half_sizes)
    return Boxes(
        centres=rotate_about_z(local_centres, yaw) + position,
        half_sizes=half_sizes,
        yaws=np.full(count, yaw),
        materials=np.full((count, 3), material),
        interior=np.zeros(count, bool),
    )


def generate_layout(rng: np.random.Generator) -> SceneLayout:
    room_size = rng.uniform(ROOM_MIN_SIZE, ROOM_MAX_SIZE)
    placements = place_furniture(choose_kinds(rng), room_size[:2], rng)
    first_object_material = 2
    boxes = Boxes.concatenate(
        [room_box(room_size)] + [placement_boxes(p, first_object_material + i) for i, p in enumerate(placements)]
    )
    classes = np.array([class_index(WALL), class_index(FLOOR)] + [class_index(p.kind.surface_class) for p in placements])
    return SceneLayout(room_size, boxes, Materials.random(classes, rng), tuple(placements))
