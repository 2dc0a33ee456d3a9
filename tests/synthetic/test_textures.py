"""Textures: seamless mirrored tiling, exact bilinear lookup, and one distinct photograph per class."""

from __future__ import annotations

import numpy as np

from pix2point.synthetic.surface_classes import SURFACE_CLASSES, texture_stack
from pix2point.synthetic.textures import TEXTURE_SIZE, mirrored_repeat, sample_textures


def test_mirrored_tiling_is_continuous_across_tile_borders() -> None:
    borders = np.array([-1.0, 0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(mirrored_repeat(borders - 1e-9), mirrored_repeat(borders + 1e-9), atol=1e-8)
    coords = np.linspace(-5, 5, 1001)
    assert mirrored_repeat(coords).min() >= 0 and mirrored_repeat(coords).max() <= 1


def test_bilinear_lookup_hits_texels_and_blends_between_them() -> None:
    stack = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    step = 1 / 7  # tile coordinate between neighbouring texel centres
    coords = np.array([[2 * step, 3 * step], [2.5 * step, 3 * step], [0.0, 0.0]])
    values = sample_textures(stack, np.array([1, 1, 0]), coords)
    np.testing.assert_allclose(values[0], stack[1, 3, 2], atol=1e-5)  # rows are v, columns u
    np.testing.assert_allclose(values[1], (stack[1, 3, 2] + stack[1, 3, 3]) / 2, atol=1e-5)
    np.testing.assert_allclose(values[2], stack[0, 0, 0], atol=1e-5)


def test_every_class_wears_a_different_photograph() -> None:
    stack = texture_stack()
    assert stack.shape == (len(SURFACE_CLASSES), TEXTURE_SIZE, TEXTURE_SIZE, 3)
    assert len({c.nyu40_id for c in SURFACE_CLASSES}) == len(SURFACE_CLASSES)
    flat = stack.reshape(len(stack), -1)
    differences = np.abs(flat[:, None] - flat[None]).mean(axis=-1)
    off_diagonal = differences[~np.eye(len(stack), dtype=bool)]
    assert off_diagonal.min() > 0.05
    assert (stack.std(axis=(1, 2)).mean(axis=1) > 0.03).all()  # textured, not flat colours
