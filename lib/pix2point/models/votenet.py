"""A VoteNet head on the sparse UNet: seeds vote for object centres, votes are clustered into proposals.

After Qi et al., VoteNet (ICCV 2019; facebookresearch/votenet models/voting_module.py, proposal_module.py),
with the backbone swapped for the Res16UNet as PointContrast did. Departures, each for a small CPU budget:
seeds are scan points drawn at random (VoteNet: farthest-point sampling of PointNet++ SA2 outputs), the
grouping takes the nearest votes inside the radius (VoteNet: the first ones a ball query finds), and a box
size is regressed as log metres (VoteNet: a size class with a residual from the class's mean size); boxes are
axis-aligned, as VoteNet's ScanNet boxes (one heading bin).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pix2point.models.voxelize import SparseBatch, tensors_to


@dataclass(frozen=True)
class VoteHeadSpec:
    num_classes: int
    num_seeds: int = 1024  # per scene (VoteNet: 1024)
    num_proposals: int = 256  # per scene (VoteNet: 256)
    group_radius: float = 0.3  # metres (VoteNet: 0.3)
    group_size: int = 16  # votes pooled per proposal (VoteNet: 16)
    width: int = 128  # VoteNet: 256 in voting, 128 in proposals


@dataclass(frozen=True)
class Seeds:
    """Scan points the head starts from, per scene: indices into the scene's points."""

    sample: torch.Tensor  # [S] int64 scene of each seed in the batch
    point: torch.Tensor  # [S] int64 point index within its scene
    xyz: torch.Tensor  # [S, 3] float32 metres

    def to(self, device: torch.device) -> Seeds:
        return tensors_to(self, device)


@dataclass(frozen=True)
class HeadOutput:
    """Per scene b: seeds [b*M : (b+1)*M], proposals [b*P : (b+1)*P] (M seeds, P proposals per scene)."""

    seed_xyz: torch.Tensor  # [B*M, 3]
    votes: torch.Tensor  # [B*M, 3] metres: seed + predicted offset to its object's centre
    proposal_xyz: torch.Tensor  # [B*P, 3] the vote each proposal is clustered around
    objectness: torch.Tensor  # [B*P, 2] logits (not an object, object)
    centres: torch.Tensor  # [B*P, 3] metres
    log_sizes: torch.Tensor  # [B*P, 3] log of the box's extent along x, y, z in metres
    class_logits: torch.Tensor  # [B*P, K]

    @property
    def boxes(self) -> torch.Tensor:
        """[B*P, 6] (min, max) corners."""
        half = torch.exp(self.log_sizes) / 2
        return torch.cat([self.centres - half, self.centres + half], dim=1)


def mlp(widths: list[int], last_plain: bool = True) -> nn.Sequential:
    """Linear + BatchNorm + ReLU layers (VoteNet's 1x1 convs); the last one bare when `last_plain`."""
    layers: list[nn.Module] = []
    for index, (inputs, outputs) in enumerate(zip(widths[:-1], widths[1:])):
        last = index == len(widths) - 2
        layers.append(nn.Linear(inputs, outputs, bias=last and last_plain))
        if not (last and last_plain):
            layers += [nn.BatchNorm1d(outputs), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def farthest_point_sampling(xyz: torch.Tensor, count: int) -> torch.Tensor:
    """[N, 3] -> [min(count, N)] int64 indices on xyz's device, greedy farthest points starting at index 0 (as
    pointnet2's FPS)."""
    count = min(count, len(xyz))
    chosen = torch.zeros(count, dtype=torch.long, device=xyz.device)
    distance = torch.full((len(xyz),), float("inf"), dtype=xyz.dtype, device=xyz.device)
    for index in range(1, count):
        # A one-element slice, not chosen[index - 1]: indexing by a 0-d tensor reads it on the host, a sync per point.
        last = xyz.index_select(0, chosen[index - 1 : index])
        distance = torch.minimum(distance, ((xyz - last) ** 2).sum(1))
        chosen[index] = distance.argmax()
    return chosen


class VoteHead(nn.Module):
    def __init__(self, in_channels: int, spec: VoteHeadSpec) -> None:
        super().__init__()
        self.spec = spec
        width = spec.width
        self.seed_projection = mlp([in_channels, width], last_plain=False)
        self.voting = mlp([width, width, width, 3 + width])
        self.grouping = mlp([3 + width, width, width, width], last_plain=False)
        self.proposal = mlp([width, width, width, 2 + 3 + 3 + spec.num_classes])

    def forward(self, seed_features: torch.Tensor, seeds: Seeds, scenes: int) -> HeadOutput:
        features = self.seed_projection(seed_features)
        voted = self.voting(features)
        votes = seeds.xyz + voted[:, :3]
        vote_features = F.normalize(features + voted[:, 3:], dim=1)  # VoteNet normalises the vote features
        per_scene = len(seeds.xyz) // scenes
        pooled, centres = [], []
        for b in range(scenes):
            rows = slice(b * per_scene, (b + 1) * per_scene)
            feature, centre = self._group(votes[rows], vote_features[rows])
            pooled.append(feature)
            centres.append(centre)
        proposal_xyz = torch.cat(centres)
        out = self.proposal(torch.cat(pooled))
        k = self.spec.num_classes
        return HeadOutput(seeds.xyz, votes, proposal_xyz, out[:, :2], proposal_xyz + out[:, 2:5], out[:, 5:8],
                          out[:, 8 : 8 + k])

    def _group(self, votes: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One scene's votes -> ([P, width] pooled proposal features, [P, 3] cluster centres)."""
        centres = votes[farthest_point_sampling(votes.detach(), self.spec.num_proposals)]
        distance = torch.cdist(centres.detach(), votes.detach())
        nearest_distance, nearest = distance.topk(min(self.spec.group_size, len(votes)), dim=1, largest=False)
        inside = nearest_distance <= self.spec.group_radius  # the centre's own vote always is
        offsets = (votes[nearest] - centres[:, None]) / self.spec.group_radius
        grouped = self.grouping(torch.cat([offsets, features[nearest]], dim=2).flatten(0, 1)).view(*nearest.shape, -1)
        pooled = grouped.masked_fill(~inside[..., None], float("-inf")).amax(dim=1)
        return pooled, centres


class DetectionModel(nn.Module):
    """Backbone (per-voxel features) + VoteHead; seeds are given per batch (scan points)."""

    def __init__(self, backbone: nn.Module, spec: VoteHeadSpec) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = VoteHead(backbone.out_channels, spec)

    def forward(self, batch: SparseBatch, seeds: Seeds) -> HeadOutput:
        tensor = batch.sparse_tensor()
        features = self.backbone(tensor).F[batch.feature_rows(tensor, seeds.sample, seeds.point)]
        return self.head(features, seeds, len(batch.voxel_offsets) - 1)
