"""Surface textures cut from real photographs, and their lookup by surface coordinates."""

from __future__ import annotations

import cv2
import numpy as np

TEXTURE_SIZE = 256  # texels per tile side; finer than any rendered pixel footprint at room distances


def photo_texture(photo: np.ndarray, tint: tuple[float, float, float], size: int = TEXTURE_SIZE) -> np.ndarray:
    """Centre square of a photo (grey or RGB uint8), resized to [size, size, 3] float32 in [0, 1], times `tint`."""
    height, width = photo.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = photo[top : top + side, left : left + side]
    if square.ndim == 2:
        square = np.repeat(square[..., None], 3, axis=2)
    # INTER_AREA averages texels away instead of aliasing them when the photo shrinks.
    resized = cv2.resize(np.ascontiguousarray(square), (size, size), interpolation=cv2.INTER_AREA)
    return resized.astype(np.float32) / 255.0 * np.asarray(tint, np.float32)


def mirrored_repeat(coords: np.ndarray) -> np.ndarray:
    """Tile coordinates -> [0, 1], mirroring every other tile so that the tiling has no seams."""
    return 1.0 - np.abs(np.mod(coords, 2.0) - 1.0)


def sample_textures(stack: np.ndarray, texture_index: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear lookup of [N] textures from `stack` [T, S, S, 3] at [N, 2] tile coordinates (u, v) -> [N, 3]."""
    size = stack.shape[1]
    texel = mirrored_repeat(coords) * (size - 1)
    low = np.minimum(np.floor(texel).astype(np.int64), size - 2)
    frac = (texel - low).astype(np.float32)
    # One flat gather per corner: much faster than indexing the 4-D stack with three index arrays.
    texels = stack.reshape(-1, 3)
    first = (texture_index * size + low[:, 1]) * size + low[:, 0]

    def corner(d_row: int, d_col: int) -> np.ndarray:
        return np.take(texels, first + d_row * size + d_col, axis=0)

    fu, fv = frac[:, :1], frac[:, 1:]
    top = corner(0, 0) * (1 - fu) + corner(0, 1) * fu
    bottom = corner(1, 0) * (1 - fu) + corner(1, 1) * fu
    return top * (1 - fv) + bottom * fv
