"""Training losses as named, weighted terms.

Contact: functional-contact points are a small fraction of a scene, so the per-point contact
loss is class-imbalance aware: a focal loss (Lin et al. 2017; ``alpha`` weighs positives,
``gamma`` down-weights easy points) by default, or BCE with ``pos_weight = #neg / #pos`` of the
batch (capped at ``max_pos_weight``).

Grasp (after Contact-GraspNet, Sundermeyer et al. 2021): each ground-truth grasp gives two
(contact, closing-direction) pairs, one per finger, the closing direction pointing to the other
finger. A sampled point with a GT finger contact within ``grasp_radius`` is grasp-positive.
Several GT grasps usually share a contact neighbourhood (the approach can turn about the
closing axis), so the regression target is the one of them the prediction is already closest
to (a min-over-hypotheses loss): regressing to the nearest one instead teaches the mean of the
valid approaches, which is none of them.
The target supplies that grasp's approach direction, that finger's closing direction and the
grasp width. Losses: grasp-score BCE on all points (positives = points with a
GT grasp, pos-weighted), and on positives only: 1 - cos for approach and closing, smooth-L1 on
width (in units of the gripper's max width).

Target object (with ``heads.target_head``): pos-weighted BCE of whether each point lies on the
object the instruction names. The contact labels say "this part of that object"; most of a
wrong top contact lands on another object, and the whole target object is a far denser signal
for learning which one the instruction means.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from grasp_semantics.models.config import HeadsConfig, LossConfig


@torch.no_grad()
def assign_grasp_targets(
    points: torch.Tensor,
    grasps: Sequence[torch.Tensor],
    widths: Sequence[torch.Tensor],
    contacts: Sequence[torch.Tensor],
    radius: float,
    predicted: dict[str, torch.Tensor] | None = None,
    max_width: float = 0.08,
) -> dict[str, torch.Tensor]:
    """Per-point grasp targets for points [B, N, 3] from per-scene GT lists.

    ``grasps[b]`` [G, 4, 4] (gripper poses, +z approach, +x closing), ``widths[b]`` [G],
    ``contacts[b]`` [G, 2, 3] (finger contacts; the first one's closing direction is +x).
    Every GT finger contact within ``radius`` of a point is a valid target for it. Without
    ``predicted`` the nearest one is taken; with ``predicted`` (``approach``, ``closing``
    [B, N, 3], ``width`` [B, N]) the one the prediction is already closest to (min-over-
    hypotheses), so a point with several valid grasps learns one of them, not their mean.
    Returns positive [B, N] bool, approach [B, N, 3], closing [B, N, 3], width [B, N].
    """
    b, n, _ = points.shape
    out = {
        "positive": torch.zeros(b, n, dtype=torch.bool, device=points.device),
        "approach": torch.zeros(b, n, 3, device=points.device),
        "closing": torch.zeros(b, n, 3, device=points.device),
        "width": torch.zeros(b, n, device=points.device),
    }
    for i in range(b):  # scenes have different grasp counts; all per-point work is batched
        g = grasps[i].to(points)
        if g.numel() == 0:
            continue
        finger = contacts[i].to(points)  # [G, 2, 3]
        c = finger.reshape(-1, 3)  # [2G, 3]: finger 0, finger 1 per grasp
        x = F.normalize(finger[:, 1] - finger[:, 0], dim=-1)
        closing = torch.stack([x, -x], dim=1).reshape(-1, 3)  # [2G, 3] towards the other finger
        approach = g[:, :3, 2].repeat_interleave(2, dim=0)  # [2G, 3]
        width = widths[i].to(points).repeat_interleave(2)  # [2G]
        d2 = torch.cdist(points[i], c).square()  # [N, 2G]
        near = d2 <= radius * radius
        if predicted is None:
            cost = d2
        else:
            cost = (
                (1 - predicted["approach"][i] @ approach.T)
                + (1 - predicted["closing"][i] @ closing.T)
                + (predicted["width"][i, :, None] - width[None]).abs() / max_width
            )  # [N, 2G]
            cost = torch.where(near, cost, torch.inf)
        best = cost.argmin(dim=1)  # [N]
        out["positive"][i] = near.any(dim=1)
        out["approach"][i] = approach[best]
        out["closing"][i] = closing[best]
        out["width"][i] = width[best]
    return out


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float, gamma: float):
    """Mean binary focal loss over all elements."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)
    a_t = alpha * target + (1 - alpha) * (1 - target)
    return (a_t * (1 - p_t).pow(gamma) * bce).mean()


def balanced_bce(logits: torch.Tensor, target: torch.Tensor, max_pos_weight: float):
    """BCE with pos_weight = #negatives / #positives of the batch, clamped to [1, max]."""
    pos = target.sum()
    neg = target.numel() - pos
    weight = (neg / pos.clamp(min=1.0)).clamp(1.0, max_pos_weight).detach()
    return F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)


class GraspCriterion(nn.Module):
    """Loss of a :class:`GraspNet` output against a batch's targets."""

    def __init__(self, cfg: LossConfig, heads: HeadsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.max_width = heads.max_width

    def forward(
        self, out: dict[str, torch.Tensor], batch: dict
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its named terms (already weighted; ``loss`` = their sum).

        ``batch``: ``points`` [B, N, 3], ``contact`` [B, N] {0, 1} labels of those points,
        ``grasps`` list of [G_b, 4, 4], ``grasp_widths`` list of [G_b], ``grasp_contacts``
        list of [G_b, 2, 3] (all in the cloud frame); with a target head also ``on_target``
        [B, N] {0, 1}: the point lies on the named object.
        """
        cfg = self.cfg
        target = batch["contact"].to(out["contact_logits"]).float()
        if cfg.contact_loss == "focal":
            contact = focal_loss(out["contact_logits"], target, cfg.focal_alpha, cfg.focal_gamma)
        elif cfg.contact_loss == "weighted_bce":
            contact = balanced_bce(out["contact_logits"], target, cfg.max_pos_weight)
        else:
            raise ValueError(f"contact_loss must be focal | weighted_bce, not {cfg.contact_loss}")
        tg = assign_grasp_targets(
            batch["points"].to(out["approach"]),
            batch["grasps"],
            batch["grasp_widths"],
            batch["grasp_contacts"],
            cfg.grasp_radius,
            predicted={k: out[k].detach() for k in ("approach", "closing", "width")},
            max_width=self.max_width,
        )
        pos = tg["positive"]
        score = balanced_bce(out["grasp_logits"], pos.float(), cfg.max_pos_weight)
        n_pos = pos.sum().clamp(min=1)
        approach = ((1 - (out["approach"] * tg["approach"]).sum(-1)) * pos).sum() / n_pos
        closing = ((1 - (out["closing"] * tg["closing"]).sum(-1)) * pos).sum() / n_pos
        width_err = F.smooth_l1_loss(
            out["width"] / self.max_width, tg["width"] / self.max_width, reduction="none", beta=0.1
        )
        width = (width_err * pos).sum() / n_pos
        terms = {}
        if "target_logits" in out:
            if "on_target" not in batch:
                raise ValueError("the target head needs on_target labels (format-2 examples)")
            on_target = batch["on_target"].to(out["target_logits"]).float()
            terms["target"] = cfg.w_target * balanced_bce(
                out["target_logits"], on_target, cfg.max_pos_weight
            )
        terms |= {
            "contact": cfg.w_contact * contact,
            "score": cfg.w_score * score,
            "approach": cfg.w_approach * approach,
            "closing": cfg.w_closing * closing,
            "width": cfg.w_width * width,
        }
        total = sum(terms.values())
        terms["loss"] = total
        terms["grasp_positive_frac"] = pos.float().mean().detach()
        return total, terms
