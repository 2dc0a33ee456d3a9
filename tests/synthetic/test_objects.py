"""Synthetic objects: area-uniform surfaces with outward normals, deterministic, distinct classes, ModelNet layout."""

from pathlib import Path

import numpy as np
import pytest

from pix2point.io import modelnet
from pix2point.synthetic import objects
from pix2point.synthetic.objects import CLASSES, sample_object, shape_rng
from pix2point.synthetic.primitives import Box, Disk, Ellipsoid, Frustum, Placed, Torus, sample_surfaces

CONVEX = ("sphere", "box", "cylinder", "cone", "bottle")


def _enclosed_volume(parts: list[Placed], count: int = 40_000) -> float:
    """Divergence theorem, V = 1/3 * integral of p.n dA: right only for area-uniform points with outward normals."""
    points, normals = sample_surfaces(parts, count, np.random.default_rng(0))
    area = sum(part.surface.area for part in parts)
    return area * float(np.mean(np.sum(points * normals, axis=1))) / 3


@pytest.mark.parametrize("parts, volume", [
    ([Placed(Ellipsoid((0.3, 0.5, 0.8)))], 4 / 3 * np.pi * 0.3 * 0.5 * 0.8),
    ([Placed(Box((0.2, 0.5, 1.0)), (0.3, -0.2, 0.1))], 0.1),
    ([Placed(Frustum(0.4, 0.0, 0.9)), Placed(Disk(0.4, facing_up=False))], np.pi * 0.4**2 * 0.9 / 3),
    (objects._solid_cylinder(0.3, 0.7, base=0.2), np.pi * 0.3**2 * 0.7),
    ([Placed(Torus(0.5, 0.15))], 2 * np.pi**2 * 0.5 * 0.15**2),
    ([Placed(Frustum(0.4, 0.1, 0.5)), Placed(Disk(0.4, facing_up=False)), Placed(Disk(0.1), (0, 0, 0.5))],
     np.pi * 0.5 / 3 * (0.4**2 + 0.4 * 0.1 + 0.1**2)),
])
def test_closed_surfaces_enclose_their_analytic_volume(parts, volume):
    assert _enclosed_volume(parts) == pytest.approx(volume, rel=0.03)


def test_box_faces_get_points_in_proportion_to_their_area():
    points, normals = Box((1.0, 2.0, 3.0)).sample(60_000, np.random.default_rng(0))
    share_by_axis = np.bincount(np.abs(normals).argmax(axis=1), minlength=3) / len(points)
    np.testing.assert_allclose(share_by_axis, np.array([6.0, 3.0, 2.0]) / 11, atol=0.01)
    assert np.allclose(np.abs(points[np.abs(normals[:, 0]) == 1, 0]), 0.5)


def test_cone_wall_holds_three_quarters_of_its_area_in_the_lower_half():
    points, _ = Frustum(0.5, 0.0, 1.0).sample(40_000, np.random.default_rng(0))
    assert np.mean(points[:, 2] < 0.5) == pytest.approx(0.75, abs=0.01)


def test_inward_wall_normals_point_at_the_axis():
    points, normals = Frustum(0.3, 0.3, 1.0, inward=True).sample(100, np.random.default_rng(0))
    assert np.all(np.sum(points[:, :2] * normals[:, :2], axis=1) < 0)


@pytest.mark.parametrize("object_class", CLASSES, ids=lambda c: c.name)
def test_every_class_gives_finite_points_with_unit_normals_that_enclose_a_volume(object_class):
    points, normals = sample_object(object_class, 4000, shape_rng(0, 0, 1))
    assert points.shape == normals.shape == (4000, 3) and np.all(np.isfinite(points))
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-9)
    assert np.mean(np.sum(points * normals, axis=1)) > 0  # flipped normals would enclose a negative volume


@pytest.mark.parametrize("name", CONVEX)
def test_convex_objects_have_outward_normals(name):
    object_class = next(c for c in CLASSES if c.name == name)
    points, normals = sample_object(object_class, 4000, shape_rng(0, 0, 2))
    outward = np.sum((points - points.mean(axis=0)) * normals, axis=1)
    assert np.mean(outward > 0) > 0.99


def test_objects_are_deterministic_in_seed_class_and_number():
    first, _ = sample_object(CLASSES[5], 500, shape_rng(3, 5, 1))
    again, _ = sample_object(CLASSES[5], 500, shape_rng(3, 5, 1))
    other, _ = sample_object(CLASSES[5], 500, shape_rng(3, 5, 2))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(np.ptp(first, axis=0), np.ptp(other, axis=0), atol=1e-3)


def test_objects_stand_upright_along_modelnets_up_axis():
    points, normals = sample_object(next(c for c in CLASSES if c.name == "table"), 4000, shape_rng(0, 5, 1))
    top = points[:, modelnet.UP_AXIS] > points[:, modelnet.UP_AXIS].max() - 0.02
    assert np.mean(normals[top, modelnet.UP_AXIS] > 0.99) > 0.9  # the table top faces +y


def _descriptor(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Histograms of height x distance from the up axis, and of the normals' up component (turn-invariant)."""
    centred = points - points.mean(axis=0)
    centred /= np.linalg.norm(centred, axis=1).max()
    radial = np.hypot(centred[:, 0], centred[:, 2])
    joint = np.histogram2d(centred[:, 1], radial, bins=6, range=((-1, 1), (0, 1)))[0].ravel()
    up = np.histogram(normals[:, 1], bins=4, range=(-1, 1))[0]
    return np.concatenate([joint, up]) / len(points)


def test_classes_are_told_apart_by_a_simple_shape_descriptor():
    labels = np.repeat(np.arange(len(CLASSES)), 5)
    descriptors = np.array([
        _descriptor(*sample_object(CLASSES[label], 1024, shape_rng(9, label, number)))
        for label, number in zip(labels, np.tile(np.arange(5), len(CLASSES)))
    ])
    distances = np.linalg.norm(descriptors[:, None] - descriptors[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    assert np.mean(labels[distances.argmin(axis=1)] == labels) >= 0.85  # chance is 0.1


def test_written_tree_reads_back_through_the_modelnet_reader(tmp_path: Path):
    root = tmp_path / "modelnet"
    names = [c.name for c in CLASSES[:2]]
    objects.write_index(root, names, {"train": ["sphere_0001", "box_0001"], "test": ["sphere_0002", "box_0002"]})
    for label in range(2):
        objects.write_class_shapes(label, root, [1, 2], count=300, seed=4)
    index = modelnet.read_index(root)
    assert index.class_names == names and [e.label for e in index.shapes] == [0, 1, 0, 1]
    points, normals = modelnet.read_shape(modelnet.shape_path(root, "box_0002"), 300)
    expected_points, expected_normals = sample_object(CLASSES[1], 300, shape_rng(4, 1, 2))
    np.testing.assert_allclose(points, expected_points, atol=1e-6)
    np.testing.assert_allclose(normals, expected_normals, atol=1e-6)
