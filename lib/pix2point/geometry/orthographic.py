"""I2P-MAE's orthographic depth views of an object point cloud (ZrrSkywalker/I2P-MAE, I2P_MAE.proj2img).

View v looks along one axis: the point's axes are permuted by VIEW_AXES[v] (xyz, zxy, yzx) into q, whose
q[0] picks the image row, q[1] the column and q[2] is the depth. One pixel spans
grid = max(range of q[0], range of q[1]) / (image_size - 3), so the larger side fills the image but for
a margin; the cloud's pixel box is centred in the image. Each point adds its depth q[2] to the
splat x splat pixels around its own (clipped to the image); the image a teacher sees is sigmoid(sum),
repeated to 3 channels, so empty background is 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VIEW_AXES: tuple[tuple[int, int, int], ...] = ((0, 1, 2), (2, 0, 1), (1, 2, 0))
# The reference leaves 3 pixels of the image side free, so splats of 5 at the extreme points stay inside
# but for one clipped pixel row or column.
MARGIN = 3
CELL_SLACK = 1e-9


@dataclass(frozen=True)
class DepthViews:
    pixels: np.ndarray  # [M, V, N, 2] int16 (u, v) = (column, row) of each point in each view
    depth_sums: np.ndarray  # [M, V, S, S] float32: the splatted depths summed per pixel (0 where no point)

    def images(self) -> np.ndarray:
        """[M, V, S, S] float32 in (0, 1): what the teacher sees (before its normalisation), one channel."""
        return (1.0 / (1.0 + np.exp(-self.depth_sums))).astype(np.float32)


def project_views(points: np.ndarray, image_size: int, splat: int) -> DepthViews:
    """The VIEW_AXES views of [M, N, 3] clouds as image_size x image_size depth images."""
    check_image_size(image_size, splat)
    permuted = np.stack([points[..., list(axes)] for axes in VIEW_AXES], axis=1)  # [M, V, N, 3]
    row_column = view_pixels(permuted[..., :2], image_size)
    depth_sums = splat_depths(row_column, permuted[..., 2], image_size, splat)
    return DepthViews(pixels=row_column[..., ::-1].astype(np.int16), depth_sums=depth_sums)


def check_image_size(image_size: int, splat: int) -> None:
    if splat < 1 or splat % 2 == 0:
        raise ValueError(f"splat must be a positive odd number of pixels, got {splat}")
    if image_size < splat + MARGIN:
        raise ValueError(f"image_size {image_size} leaves no room for a {splat}x{splat} splat: at least {splat + MARGIN}")


def view_pixels(plane: np.ndarray, image_size: int) -> np.ndarray:
    """[..., N, 2] in-plane coordinates -> [..., N, 2] int64 (row, column), each cloud centred in the image."""
    plane = plane.astype(np.float64)
    low = plane.min(axis=-2, keepdims=True)
    extent = (plane.max(axis=-2, keepdims=True) - low).max(axis=-1, keepdims=True)
    # A cloud collapsed to a point (or a line along the view axis) still gets a pixel: the centre.
    grid = np.maximum(extent / (image_size - MARGIN), np.finfo(np.float32).tiny)
    # The slack keeps the farthest point in the last cell when (extent / grid) rounds to just under it.
    cells = np.floor((plane - low) / grid + CELL_SLACK)
    cells = np.clip(cells, 0, image_size - MARGIN).astype(np.int64)
    centre = (cells.max(axis=-2, keepdims=True) + cells.min(axis=-2, keepdims=True)) // 2
    return cells - centre + image_size // 2 - 1


def splat_depths(row_column: np.ndarray, depth: np.ndarray, image_size: int, splat: int) -> np.ndarray:
    """Sum each point's `depth` over the splat x splat pixels around its (row, column), clipped to the image.

    row_column [..., N, 2], depth [..., N] -> [..., S, S] float32; one bincount over all images at once."""
    batch_shape, count = depth.shape[:-1], depth.shape[-1]
    images = int(np.prod(batch_shape))
    steps = np.arange(splat) - splat // 2
    offsets = np.stack(np.meshgrid(steps, steps, indexing="ij"), axis=-1).reshape(-1, 2)  # [K, 2]
    footprint = np.clip(row_column.reshape(images, count, 1, 2) + offsets, 0, image_size - 1)  # [I, N, K, 2]
    image_index = np.arange(images).reshape(-1, 1, 1) * image_size * image_size
    flat = image_index + footprint[..., 0] * image_size + footprint[..., 1]
    weights = np.broadcast_to(depth.reshape(images, count, 1), flat.shape)
    sums = np.bincount(flat.ravel(), weights=weights.ravel(), minlength=images * image_size * image_size)
    return sums.reshape(*batch_shape, image_size, image_size).astype(np.float32)
