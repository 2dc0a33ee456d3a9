"""The scan: points sampled on the visible surfaces of a layout, coloured and labelled like a ScanNet mesh."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pix2point.synthetic.boxes import Boxes, describe_surface, inside_any, to_world
from pix2point.synthetic.layout import ROOM_BOX, SceneLayout
from pix2point.synthetic.shading import shade
from pix2point.synthetic.surface_classes import nyu40_ids, palette

CONTACT = 1e-3  # metres: faces this close to the inside of another box touch it and are hidden


@dataclass(frozen=True)
class Scan:
    xyz: np.ndarray  # [N, 3] float32
    rgb: np.ndarray  # [N, 3] uint8
    surface_class: np.ndarray  # [N] index into SURFACE_CLASSES
    box_index: np.ndarray  # [N] the layout box each point lies on (0: the room)

    @property
    def label(self) -> np.ndarray:
        """[N] uint16 NYU40 ids."""
        return nyu40_ids()[self.surface_class]

    @property
    def label_rgb(self) -> np.ndarray:
        """[N, 3] uint8 ScanNet palette colours of the labels."""
        return palette()[self.surface_class]


@dataclass(frozen=True)
class Faces:
    box_index: np.ndarray  # [F]
    axis: np.ndarray  # [F] local axis the face is normal to
    side: np.ndarray  # [F] -1 or +1 along that axis
    area: np.ndarray  # [F] square metres


def box_faces(boxes: Boxes) -> Faces:
    """The faces of every box that are seen from above (the cameras never go below any surface).

    That drops the room's open top and the undersides of furniture, which a real reconstruction
    does not have either.
    """
    box_index, axis, side = (a.ravel() for a in np.meshgrid(np.arange(len(boxes)), np.arange(3), (-1, 1), indexing="ij"))
    seen_from = np.where(boxes.interior[box_index], -side, side)
    keep = ~((axis == 2) & (seen_from < 0))
    box_index, axis, side = box_index[keep], axis[keep], side[keep]
    half = boxes.half_sizes[box_index]
    area = 4 * np.prod(half, axis=1) / half[np.arange(len(axis)), axis]
    return Faces(box_index, axis, side, area)


def sample_on_faces(faces: Faces, boxes: Boxes, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` area-uniform points on the faces -> ([count, 3] world points, [count] box index)."""
    chosen = rng.choice(len(faces.area), count, p=faces.area / faces.area.sum())
    box_index, axis = faces.box_index[chosen], faces.axis[chosen]
    half = boxes.half_sizes[box_index]
    local = rng.uniform(-1.0, 1.0, (count, 3)) * half
    rows = np.arange(count)
    local[rows, axis] = faces.side[chosen] * half[rows, axis]
    return to_world(local, boxes, box_index), box_index


def exposed(points: np.ndarray, box_index: np.ndarray, layout: SceneLayout) -> np.ndarray:
    """Whether each face point can be seen from the room: not inside another piece of furniture and,
    on furniture, not flush with the walls or the floor (hidden behind them)."""
    on_room = box_index == ROOM_BOX
    # Furniture box i is layout box i + 1: a room point excludes no furniture box (-1).
    covered = inside_any(points, layout.furniture, CONTACT, excluded=box_index - 1)
    in_room = inside_any(points, layout.room, -CONTACT, excluded=np.full(len(points), -1))
    return ~covered & (in_room | on_room)


def sample_scan(layout: SceneLayout, count: int, rng: np.random.Generator) -> Scan:
    """Area-uniform over the exposed surfaces: candidates on all faces, hidden ones rejected, until `count`."""
    faces = box_faces(layout.boxes)
    points, boxes_of = [], []
    kept = 0
    while kept < count:
        candidates, box_index = sample_on_faces(faces, layout.boxes, 2 * (count - kept) + 64, rng)
        keep = exposed(candidates, box_index, layout)
        points.append(candidates[keep])
        boxes_of.append(box_index[keep])
        kept += int(keep.sum())
    xyz, box_index = np.concatenate(points)[:count], np.concatenate(boxes_of)[:count]
    surface = describe_surface(xyz, layout.boxes, box_index)
    rgb = np.round(shade(surface, layout.materials) * 255).astype(np.uint8)
    return Scan(xyz.astype(np.float32), rgb, layout.materials.surface_class[surface.materials], box_index)
