"""VoteNet's training loss (models/loss_helper.py), for axis-aligned boxes with log-size regression.

    loss = 10 * (vote + 0.5 * objectness + centre + size + 0.1 * class)

vote: L1 distance from each seed on an object to that object's centre. objectness: a proposal whose
cluster centre lies within 0.3 m of a ground-truth centre is an object, beyond 0.6 m not one, in between
unsupervised; cross-entropy weighted 0.2 / 0.8. Each proposal is assigned the ground-truth box nearest its
cluster centre; centre: squared distance of positive proposals' centres to the nearest ground-truth centre
plus that of every ground-truth centre to the nearest predicted one; size: smooth L1 on log sizes of
positives (VoteNet: size class + residual); class: cross-entropy of positives' classes (VoteNet's sem_cls_loss).
Every tensor the loss makes is made on the device of the head's output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pix2point.models.votenet import HeadOutput
from pix2point.models.voxelize import tensors_to

TERMS = ("vote", "objectness", "centre", "size", "class")  # the loss's terms, in its formula's order

NEAR_THRESHOLD, FAR_THRESHOLD = 0.3, 0.6  # metres
OBJECTNESS_WEIGHTS = (0.2, 0.8)
MIN_BOX_SIZE = 0.01  # metres: a flat instance's box still has a log size


@dataclass(frozen=True)
class SceneTargets:
    """Ground truth of one scene, row-aligned with its seeds."""

    seed_instance: torch.Tensor  # [M] int64 box row of each seed's object, -1 if none
    boxes: torch.Tensor  # [K, 6] float32 (min, max) metres
    classes: torch.Tensor  # [K] int64

    def to(self, device: torch.device) -> SceneTargets:
        return tensors_to(self, device)


def _mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / (mask.sum() + 1e-6)


def scene_loss(out: HeadOutput, seeds: slice, proposals: slice, target: SceneTargets) -> dict[str, torch.Tensor]:
    """The loss terms (TERMS -> scalar tensor) of one scene whose seeds and proposals are the given rows of `out`."""
    votes = out.votes[seeds]
    objectness, proposal_xyz = out.objectness[proposals], out.proposal_xyz[proposals]
    zero = votes.sum() * 0
    weights = torch.tensor(OBJECTNESS_WEIGHTS, dtype=objectness.dtype, device=objectness.device)
    if len(target.boxes) == 0:
        negative = torch.zeros(len(objectness), dtype=torch.long, device=objectness.device)
        return {"vote": zero, "objectness": F.cross_entropy(objectness, negative, weight=weights),
                "centre": zero, "size": zero, "class": zero}
    gt_centres = (target.boxes[:, :3] + target.boxes[:, 3:]) / 2
    gt_log_sizes = torch.log((target.boxes[:, 3:] - target.boxes[:, :3]).clamp(min=MIN_BOX_SIZE))

    on_object = (target.seed_instance >= 0).float()
    seed_centres = gt_centres[target.seed_instance.clamp(min=0)]
    vote = _mean((votes - seed_centres).abs().sum(1), on_object)

    distance, assigned = torch.cdist(proposal_xyz.detach(), gt_centres).min(dim=1)
    positive = (distance < NEAR_THRESHOLD).float()
    supervised = positive + (distance > FAR_THRESHOLD).float()
    objectness_loss = _mean(F.cross_entropy(objectness, positive.long(), weight=weights, reduction="none"), supervised)

    centres = out.centres[proposals]
    squared = torch.cdist(centres, gt_centres) ** 2
    centre = _mean(squared.min(dim=1).values, positive) + squared.min(dim=0).values.mean()
    size = _mean(F.smooth_l1_loss(out.log_sizes[proposals], gt_log_sizes[assigned], reduction="none").sum(1), positive)
    semantic = _mean(F.cross_entropy(out.class_logits[proposals], target.classes[assigned], reduction="none"), positive)
    return {"vote": vote, "objectness": objectness_loss, "centre": centre, "size": size, "class": semantic}


def detection_loss(out: HeadOutput, targets: list[SceneTargets]) -> tuple[torch.Tensor, dict[str, float]]:
    """(total loss averaged over scenes, each term's value (TERMS -> float)) for a batch of scenes."""
    seeds_per_scene, proposals_per_scene = len(out.votes) // len(targets), len(out.centres) // len(targets)
    terms = [scene_loss(out, slice(b * seeds_per_scene, (b + 1) * seeds_per_scene),
                        slice(b * proposals_per_scene, (b + 1) * proposals_per_scene), target)
             for b, target in enumerate(targets)]
    mean = {name: torch.stack([t[name] for t in terms]).mean() for name in terms[0]}
    total = 10 * (mean["vote"] + 0.5 * mean["objectness"] + mean["centre"] + mean["size"] + 0.1 * mean["class"])
    return total, dict(zip(TERMS, torch.stack([mean[name] for name in TERMS]).tolist()))  # one device sync
