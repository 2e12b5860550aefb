"""Per-point contact and grasp heads of the network.

Grasp parameterisation after Contact-GraspNet (Sundermeyer et al., ICRA 2021): every point is
a candidate first-finger contact ``c`` with a closing direction ``b`` (from that finger into
the object), an approach direction ``a`` (orthogonal to ``b``), an opening width ``w`` and a
grasp-success logit. Turning these into ranked 4x4 grasps is grasp planning
(``grasping/decoding.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from grasp_semantics.models.config import HeadsConfig


def orthonormal_directions(
    approach_raw: torch.Tensor, closing_raw: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit approach [..., 3] orthogonal to unit closing [..., 3] (Gram-Schmidt).

    The closing direction comes first: it is set by the surface (antipodal contacts), while
    the approach may turn about it, so an error in the approach must not tilt the closing.
    """
    b = F.normalize(closing_raw, dim=-1, eps=1e-6)
    a = approach_raw - (approach_raw * b).sum(-1, keepdim=True) * b
    return F.normalize(a, dim=-1, eps=1e-6), b


class GraspHeads(nn.Module):
    """Fused point features [B, N, C] → contact logit, grasp logit, approach, closing, width."""

    def __init__(self, cfg: HeadsConfig, in_dim: int) -> None:
        super().__init__()
        self.cfg = cfg

        def trunk() -> nn.Sequential:
            return nn.Sequential(
                nn.Linear(in_dim, cfg.hidden),
                nn.ReLU(),
                nn.Dropout(cfg.dropout),
                nn.Linear(cfg.hidden, cfg.hidden),
                nn.ReLU(),
            )

        self.contact = nn.Sequential(trunk(), nn.Linear(cfg.hidden, 1))
        self.target = nn.Sequential(trunk(), nn.Linear(cfg.hidden, 1)) if cfg.target_head else None
        self.grasp_trunk = trunk()
        self.grasp_out = nn.Linear(cfg.hidden, 1 + 3 + 3 + 1)  # score, approach, closing, width

    def forward(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns contact_logits [B, N], grasp_logits [B, N], approach [B, N, 3] (unit),
        closing [B, N, 3] (unit, orthogonal to approach), width [B, N] in [0, max_width] m,
        and, in training mode with the target head, target_logits [B, N] (an auxiliary
        task: inference does not use it, so it is not computed there)."""
        g = self.grasp_out(self.grasp_trunk(feats))  # [B, N, 8]
        approach, closing = orthonormal_directions(g[..., 1:4], g[..., 4:7])
        out = {
            "contact_logits": self.contact(feats).squeeze(-1),
            "grasp_logits": g[..., 0],
            "approach": approach,
            "closing": closing,
            "width": torch.sigmoid(g[..., 7]) * self.cfg.max_width,
        }
        if self.target is not None and self.training:
            out["target_logits"] = self.target(feats).squeeze(-1)
        return out
