"""Point tokenisation of Point-MAE / Point-M2AE: farthest point sampling, kNN groups, and their multi-scale
hierarchy, batched in torch (each level's centres are sampled from the level below's centres)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@torch.no_grad()
def farthest_point_sample(xyz: torch.Tensor, count: int) -> torch.Tensor:
    """[B, N, 3] -> [B, count] indices of well-spread points: each is the point farthest from those already
    chosen. Starts at point 0 of every cloud, as pointnet2's CUDA kernel does, so the result is deterministic."""
    batch, points, _ = xyz.shape
    if not 0 < count <= points:
        raise ValueError(f"cannot sample {count} of {points} points")
    chosen = torch.empty(batch, count, dtype=torch.long, device=xyz.device)
    nearest = torch.full((batch, points), torch.inf, dtype=xyz.dtype, device=xyz.device)
    farthest = torch.zeros(batch, dtype=torch.long, device=xyz.device)
    rows = torch.arange(batch, device=xyz.device)
    for i in range(count):  # one pass per sample; the points are handled as one tensor
        chosen[:, i] = farthest
        nearest = torch.minimum(nearest, (xyz - xyz[rows, farthest][:, None]).square().sum(-1))
        farthest = nearest.argmax(1)
    return chosen


@torch.no_grad()
def knn(query: torch.Tensor, xyz: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For [B, G, 3] query points, the [B, G, k] squared distances and indices of their k nearest points of
    [B, N, 3] `xyz`, nearest first."""
    if not 0 < k <= xyz.shape[1]:
        raise ValueError(f"cannot take {k} neighbours of {xyz.shape[1]} points")
    # Exact differences rather than the |a|^2 + |b|^2 - 2ab expansion, whose rounding can reorder near ties.
    distances = torch.cdist(query, xyz, compute_mode="donot_use_mm_for_euclid_dist").square()
    squared, index = distances.topk(k, dim=-1, largest=False, sorted=True)
    return squared, index


def gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values [B, N, *rest], index [B, *shape] -> [B, *shape, *rest]: per cloud, the rows `index` picks."""
    rows = torch.arange(values.shape[0], device=values.device).view(-1, *([1] * (index.dim() - 1)))
    return values[rows, index]


@dataclass(frozen=True)
class PointHierarchy:
    """Tokens of every scale, finest first. Level l's centres are sampled from level l-1's centres (the input
    points for l = 0) and grouped with their `group_sizes[l]` nearest ones there."""

    points: torch.Tensor  # [B, N, 3]
    centres: list[torch.Tensor]  # per level [B, G_l, 3]
    neighbours: list[torch.Tensor]  # per level [B, G_l, K_l]: rows of the level below (points for level 0)
    point_index: list[torch.Tensor]  # per level [B, G_l]: which input point each centre is

    def members(self, level: int) -> torch.Tensor:
        """[B, G_l, K_l, 3] the grouped coordinates of level `level`, relative to their centre."""
        below = self.points if level == 0 else self.centres[level - 1]
        return gather(below, self.neighbours[level]) - self.centres[level][:, :, None]

    def member_points(self, level: int) -> torch.Tensor:
        """[B, G_l, K_l] input-point index of each group member of level `level`."""
        if level == 0:
            return self.neighbours[0]
        return gather(self.point_index[level - 1], self.neighbours[level])


def group_hierarchy(points: torch.Tensor, num_groups: tuple[int, ...], group_sizes: tuple[int, ...]) -> PointHierarchy:
    centres, neighbours, point_index = [], [], []
    below, below_index = points, None
    for count, size in zip(num_groups, group_sizes, strict=True):
        picked = farthest_point_sample(below, count)
        centre = gather(below, picked)
        centres.append(centre)
        neighbours.append(knn(centre, below, size)[1])
        point_index.append(picked if below_index is None else gather(below_index, picked))
        below, below_index = centre, point_index[-1]
    return PointHierarchy(points, centres, neighbours, point_index)


def scatter_rows(full: torch.Tensor, index: torch.Tensor, rows: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Inverse of `gather` for a padded subset: full [B, G, C] with rows [B, L, C] written at index [B, L]
    where valid [B, L]; padding rows leave `full` as it was. Indices within a cloud must be distinct."""
    expanded = index[..., None].expand(-1, -1, full.shape[-1])
    kept = torch.where(valid[..., None], rows, full.gather(1, expanded))
    return full.scatter(1, expanded, kept)


def visible_first(visible: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, G] visible -> (index [B, L], valid [B, L]): each cloud's visible tokens first, in their order,
    padded to the largest count L with masked ones (valid False), so clouds with different counts batch."""
    count = visible.sum(1)
    index = torch.argsort((~visible).to(torch.uint8), dim=1, stable=True)[:, : int(count.max())]
    valid = torch.arange(index.shape[1], device=visible.device) < count[:, None]
    return index, valid
