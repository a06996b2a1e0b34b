"""The losses that pull matching pairs together in the shared space.

Each takes the batch's unit vectors of both sides, ``(left, right)``, and the
rows' pair groups: rows of the same group match (several captions of one
photo), every other row of the batch is a negative. Distances are Euclidean
between unit vectors, ``D = sqrt(2 - 2 cos)``, in [0, 2].
"""

import math

import torch
from torch import nn

# CLIP's bound on the learnable logit scale (a temperature of 0.01)
MAX_LOGIT_SCALE = 100.0
# the hinge's distance keeps a gradient where two vectors coincide
_EPS = 1e-12


def _positives(groups):
    return groups[:, None] == groups[None, :]


def _distances(left, right):
    squared = (left.pow(2).sum(1)[:, None] + right.pow(2).sum(1)[None, :]
               - 2 * left @ right.T)
    return squared.clamp_min(0), squared.clamp_min(_EPS).sqrt()


class InfoNCELoss(nn.Module):
    """Symmetric InfoNCE (CLIP, LiT): each row must pick its partner among the
    batch's rows of the other side, in both directions, under a learnable
    temperature that starts at ``temperature``. With groups, every row of the
    partner's group counts as the answer (the log of their summed
    probability)."""

    def __init__(self, temperature=0.07):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    @property
    def temperature(self):
        return 1.0 / self.scale().item()

    def scale(self):
        return self.log_scale.clamp(max=math.log(MAX_LOGIT_SCALE)).exp()

    def forward(self, y_pred, groups):
        left, right = y_pred
        logits = self.scale() * left @ right.T
        positive = _positives(groups)
        return 0.5 * (_picked(logits, positive) + _picked(logits.T, positive.T))


def _picked(logits, positive):
    log_p = logits.log_softmax(dim=1)
    return -torch.logsumexp(log_p.masked_fill(~positive, -torch.inf), dim=1).mean()


class ContrastiveLoss(nn.Module):
    """The margin contrastive loss, ``L = (1 - y) D² / 2 + y max(0, m - D)² / 2``
    with y = 0 for a matching pair and 1 for a non-matching one: matching pairs
    are pulled together, non-matching ones pushed to at least ``margin`` apart.
    The negatives are mined in the batch: every non-matching pair closer than
    the margin (the others have zero loss), averaged over those; the matching
    pairs are averaged over themselves, so neither kind drowns the other."""

    def __init__(self, margin=1.0):
        super().__init__()
        self.margin = margin

    def forward(self, y_pred, groups):
        squared, distance = _distances(*y_pred)
        positive = _positives(groups)
        pulled = 0.5 * squared[positive].mean()
        hinge = 0.5 * (self.margin - distance[~positive]).clamp_min(0).pow(2)
        active = hinge > 0
        pushed = hinge[active].mean() if active.any() else hinge.sum()
        return pulled + pushed


class TripletLoss(nn.Module):
    """The triplet loss ``max(0, m + D(a, p) - D(a, n))`` for each row as anchor
    ``a``, its partner as ``p`` and each non-matching row of the other side in
    the batch as ``n``, in both directions, with the negatives mined: only the
    triplets that violate the margin (hard and semi-hard negatives) count, and
    are averaged. (Keeping only the single hardest negative of each anchor,
    as VSE++ does, collapses every vector to one point from a random start.)"""

    def __init__(self, margin=0.2):
        super().__init__()
        self.margin = margin

    def forward(self, y_pred, groups):
        _, distance = _distances(*y_pred)
        negative = ~_positives(groups)
        partner = distance.diagonal()
        losses = torch.cat([
            (self.margin + partner[:, None] - distance).clamp_min(0)[negative],
            (self.margin + partner[None, :] - distance).clamp_min(0)[negative],
        ])
        active = losses > 0
        return losses[active].mean() if active.any() else losses.sum()


LOSSES = {"infonce": InfoNCELoss, "contrastive": ContrastiveLoss, "triplet": TripletLoss}
# the margins that suit D in [0, 2]: orthogonal unit vectors are sqrt(2) apart
DEFAULT_MARGINS = {"contrastive": 1.0, "triplet": 0.2}
