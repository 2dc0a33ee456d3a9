"""A reader's scan coordinates -> the float32 [N, 3] metres the scenes artefact stores (POINTS_SCHEMA), without
losing the resolution the voxels need.

float32 keeps 24 significant bits: at 1e6 m from the origin (a georeferenced or un-centred scan, as in
PRBonn/segcontrast#10) its step is 6.25 cm, so points 10 cm apart collapse or split unevenly long before any
voxel grid sees them. A point-only source (S3DIS, Pointcept) is moved near the origin first (nothing else
refers to its frame); a source whose frame other files share (ScanNet's camera poses) cannot be moved here and
is refused, as is a file whose own dtype has already lost the resolution.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Metres: the coarsest step a stored coordinate may have. A twentieth of the smallest voxel in use (2.5 cm,
# PPKT's; 2 cm is Pointcept's ScanNet default), so quantisation sees the scan as measured. float32 holds it
# up to 8192 m from the origin.
RESOLUTION = 1e-3


def step_at(dtype: np.dtype, extent: float) -> float:
    """Metres between neighbouring values of `dtype` at `extent` metres from the origin."""
    return float(np.spacing(np.dtype(dtype).type(extent)))


def fixed_frame_float32(xyz: np.ndarray, path: Path, error: type[ValueError]) -> np.ndarray:
    """[N, 3] finite coordinates in metres of the file `path`, whose frame other files share -> float32 [N, 3],
    unmoved.

    Raises `error` naming `path` when the cloud has no point (MinkowskiEngine crashes on an empty sparse
    tensor, NVIDIA/MinkowskiEngine#591) or when float32 cannot resolve RESOLUTION at its farthest coordinate.
    """
    extent = _non_empty_extent(xyz, path, error)
    _check_resolution(np.float32, extent, path, error, "the scenes artefact's float32",
                      "the scan's frame is shared with its camera poses: move both near the origin")
    return xyz.astype(np.float32)


def near_origin_float32(xyz: np.ndarray, path: Path, error: type[ValueError]) -> np.ndarray:
    """[N, 3] finite coordinates in metres of the file `path` (any float dtype) of a point-only source ->
    float32 [N, 3] resolved to RESOLUTION: unmoved when float32 resolves it where the cloud lies, else shifted
    by the whole metres of the cloud's minimum (computed in float64; logged with the offset).

    Raises `error` naming `path` for an empty cloud, for a file whose own dtype resolves coarser than
    RESOLUTION at its coordinates (a float32 file far out lost the resolution before it was read), or for a
    cloud spanning so far that float32 cannot resolve it even after the shift.
    """
    extent = _non_empty_extent(xyz, path, error)
    _check_resolution(xyz.dtype, extent, path, error, f"the file's {xyz.dtype}", "store the scan centred or as float64")
    if step_at(np.float32, extent) <= RESOLUTION:
        return xyz.astype(np.float32)
    offset = np.floor(xyz.min(axis=0).astype(np.float64))
    shifted = xyz.astype(np.float64) - offset
    _check_resolution(np.float32, float(shifted.max()), path, error,
                      "float32, even with the cloud's minimum moved to the origin,", "split the scan")
    log.warning("%s: coordinates reach %.6g m from the origin; shifted by %s m so float32 keeps %g m",
                path, extent, offset.tolist(), RESOLUTION)
    return shifted.astype(np.float32)


def _non_empty_extent(xyz: np.ndarray, path: Path, error: type[ValueError]) -> float:
    """The largest |coordinate|; `error` naming `path` for an empty cloud."""
    if len(xyz) == 0:
        raise error(f"{path}: the point cloud is empty (0 points)")
    return float(np.abs(xyz).max())


def _check_resolution(dtype: np.dtype, extent: float, path: Path, error: type[ValueError], what: str,
                      advice: str) -> None:
    """`error` naming `path` when `what` (values of `dtype`) steps coarser than RESOLUTION at `extent` metres."""
    step = step_at(dtype, extent)
    if step > RESOLUTION:
        raise error(f"{path}: coordinates reach {extent:.6g} m from the origin, where {what} resolves only "
                    f"{step:.3g} m, coarser than {RESOLUTION:g} m; {advice}")
