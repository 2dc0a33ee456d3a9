"""Points -> voxels -> one MinkowskiEngine batch, keeping the way back from every point to its feature row.

The invariant the training loop relies on: for a batch built by `collate_sparse` and the tensor
`batch.sparse_tensor()`, row `batch.feature_rows(tensor, b, i)` of that tensor, and of any network
output that keeps its coordinate map (Res16UNet's output does), belongs to the voxel containing point i
of sample b. It goes through the tensor's `inverse_mapping`, so it holds even if MinkowskiEngine orders
its rows differently from the collated input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TypeVar

import MinkowskiEngine as ME
import torch

from pix2point.models.backbone_spec import Rounding

Record = TypeVar("Record")


@dataclass(frozen=True)
class VoxelizedPoints:
    coordinates: torch.Tensor  # [V, 3] int32: floor (or round) of xyz / voxel_size per occupied voxel, no repeats
    representative_point: torch.Tensor  # [V] int64: the point whose input features stand for the voxel
    point_to_voxel: torch.Tensor  # [N] int64: row of `coordinates` of the voxel holding each point

    def voxel_features(self, point_features: torch.Tensor) -> torch.Tensor:
        """[N, C] per-point input features -> [V, C], each voxel taking its representative point's."""
        return point_features[self.representative_point]


# Voxel indices must stay below 2**24: sparse_quantize divides float32 points by the voxel size in float32,
# which above it cannot tell neighbouring voxels apart, and its int32 cast wraps at 2**31 (points 16 m apart
# landed in one voxel at -2**31). 2**24 voxels of 2 cm is 335 km: only an un-centred cloud gets near it.
MAX_VOXEL_INDEX = 2**24


def voxelize(xyz: torch.Tensor, voxel_size: float, rounding: Rounding = "floor") -> VoxelizedPoints:
    """Quantise [N, 3] metric points to a grid of `voxel_size`; a voxel is represented by one of its points.

    `rounding` "floor" (MinkowskiEngine's sparse_quantize, SLidR's) puts voxel k over [k v, (k + 1) v);
    "round" (Image2Point's np.round(xyz / voxel_size)) centres it on k v. ValueError for points so far from
    the origin that a voxel index would reach MAX_VOXEL_INDEX (the readers move such scans near the origin:
    io/coordinates.py)."""
    if xyz.ndim != 2 or xyz.shape[1] != 3 or not xyz.is_floating_point():
        raise ValueError(f"voxelize expects [N, 3] float points, got {tuple(xyz.shape)} {xyz.dtype}")
    if not voxel_size > 0:
        raise ValueError(f"voxel_size must be positive, got {voxel_size}")
    if not torch.isfinite(xyz).all():
        raise ValueError("voxelize got non-finite point coordinates")
    extent = float(xyz.abs().max()) if len(xyz) else 0.0
    if extent / voxel_size >= MAX_VOXEL_INDEX:
        raise ValueError(f"voxelize got points {extent:.6g} m from the origin: voxel indices of {voxel_size} m "
                         f"would reach {extent / voxel_size:.3g}, past {MAX_VOXEL_INDEX} where float32 quantisation "
                         f"merges voxels and int32 wraps; move the cloud near the origin")
    if rounding == "round":
        # Integer-valued coordinates pass through sparse_quantize's floor unchanged.
        xyz, voxel_size = torch.round(xyz / voxel_size), 1
    coordinates, representative, inverse = ME.utils.sparse_quantize(
        xyz, return_index=True, return_inverse=True, quantization_size=voxel_size)
    return VoxelizedPoints(coordinates.int(), representative.long(), inverse.long())


def sparse_tensor(features: torch.Tensor, coordinates: torch.Tensor) -> ME.SparseTensor:
    """ME.SparseTensor([N, C] features, [N, 1 + D] int32 batched coordinates) whose coordinate manager runs
    torch's current thread count instead of ME's min(cpu_count, 20) (MinkowskiCoordinateManager.py)."""
    manager = ME.CoordinateManager(
        D=coordinates.shape[1] - 1, num_threads=torch.get_num_threads(),
        coordinate_map_type=ME.CoordinateMapType.CUDA if coordinates.is_cuda else ME.CoordinateMapType.CPU)
    return ME.SparseTensor(features, coordinates, coordinate_manager=manager)


@dataclass(frozen=True)
class SparseBatch:
    coordinates: torch.Tensor  # [V, 4] int32: (sample, x, y, z), MinkowskiEngine's batched layout
    features: torch.Tensor  # [V, C]
    voxel_offsets: torch.Tensor  # [B + 1] int64: sample b owns rows voxel_offsets[b]:voxel_offsets[b + 1]
    point_rows: torch.Tensor  # [sum of N_b] int64: the collated row of each point, samples one after another
    point_offsets: torch.Tensor  # [B + 1] int64: sample b's points start at point_offsets[b] in point_rows

    def sparse_tensor(self) -> ME.SparseTensor:
        """The batch as MinkowskiEngine's input; ValueError for a batch without a voxel, which would crash
        MinkowskiEngine's first convolution with SIGSEGV (NVIDIA/MinkowskiEngine#591) instead of naming a cause."""
        if len(self.coordinates) == 0:
            raise ValueError(f"a sparse batch of {len(self.voxel_offsets) - 1} samples has no voxel: every point "
                             f"cloud in it is empty")
        return sparse_tensor(self.features, self.coordinates)

    def to(self, device: torch.device) -> SparseBatch:
        """This batch with every tensor on `device` (a step moves its batch once, to its model's device)."""
        return tensors_to(self, device)

    def feature_rows(self, tensor: ME.SparseTensor, sample_index: torch.Tensor,
                     point_index: torch.Tensor) -> torch.Tensor:
        """Rows of `tensor` (built by `sparse_tensor()`) holding the voxels of points (sample_index, point_index)."""
        if len(tensor.inverse_mapping) != len(self.coordinates):
            raise ValueError(f"the tensor has {len(tensor.inverse_mapping)} input rows, this batch "
                             f"{len(self.coordinates)}: it was not built from this batch")
        collated_rows = self.point_rows[self.point_offsets[sample_index] + point_index]
        return tensor.inverse_mapping.long()[collated_rows]


def collate_sparse(samples: Sequence[tuple[VoxelizedPoints, torch.Tensor]]) -> SparseBatch:
    """Batch (voxelised sample, its [V, C] voxel features) pairs; sample b gets batch index b."""
    voxels = [voxelized for voxelized, _ in samples]
    for index, (voxelized, voxel_features) in enumerate(samples):
        if len(voxel_features) != len(voxelized.coordinates):
            raise ValueError(f"sample {index}: {len(voxel_features)} feature rows for "
                             f"{len(voxelized.coordinates)} voxels")
    coordinates, features = ME.utils.sparse_collate([v.coordinates for v in voxels],
                                                    [voxel_features for _, voxel_features in samples])
    voxel_offsets = _offsets([len(v.coordinates) for v in voxels])
    point_rows = torch.cat([v.point_to_voxel + start for v, start in zip(voxels, voxel_offsets[:-1])])
    return SparseBatch(coordinates, features, voxel_offsets, point_rows,
                       _offsets([len(v.point_to_voxel) for v in voxels]))


def tensors_to(record: Record, device: torch.device) -> Record:
    """A copy of the frozen dataclass `record` with every tensor field on `device` (other fields as they are)."""
    return replace(record, **{f.name: getattr(record, f.name).to(device) for f in fields(record)
                              if isinstance(getattr(record, f.name), torch.Tensor)})


def _offsets(counts: list[int]) -> torch.Tensor:
    return torch.cumsum(torch.tensor([0, *counts], dtype=torch.long), dim=0)
