"""Grasp scorer: the chance that a planned grasp succeeds, learned from the planner's own
candidates.

The planner (``grasp_semantics/part_grasps.py``) proposes grasps across the part the network
says to touch and ranks them by a hand-made quality (contact probability between the fingers
x a preference for closing straight across). On held-out scenes about half of its
collision-free candidates succeed, and nearly always at least one does, but the hand-made
quality often puts a failing one first: it cannot see that a finger would land on the part's
rounded top rather than its side, or on a neighbouring part. This network ranks instead.

Each candidate is described by what the sensor saw around it, in the gripper's frame
(``gripper_view``): a voxel grid over the opened fingers, the palm's underside and just beyond
(``GraspScorerConfig.cells``, ``low``, ``high``) holding, per cell, log(1 + point count) and
the mean contact probability of those points; the up direction in the gripper frame (where the
table is); the opening (as a fraction of the gripper's largest) and the planner's quality;
and, when the planner plans on several parts (``part_grasps.regions``), which part: its rank
(0 = the most probable) and its contact's probability relative to the most probable one, so
that a grasp on the second most likely part ranks by the chance that part is the one asked
for. An MLP maps these to the logit of success. It is trained
(``grasp_semantics/train_scorer.py``) on candidates planned on training scenes, each labelled
by the evaluation's own grasp checks (``data/grasps.py``: closes on the functional part,
antipodal, no collision), so it learns the metric from geometry the robot can observe, never
from the ground truth at run time.

The scorer depends on the contact probabilities of the grasp model it was trained with: its
directory (``grasp_scorer/`` beside the grasp weights: ``config.yaml`` +
``model.safetensors``) records a fingerprint of those weights, and loading it for another
model raises.

It also depends on the gripper its candidates were planned and labelled with (``gripper`` in
its config; older files record only the opening, the rest being ``GripperConfig``'s
defaults): its grid is fixed in that gripper's frame, sized to hold its fingers at their
widest. :meth:`GraspScorer.unsupported` says which grippers it can rank for: those with the
same fingers (depth, thickness, breadth) opening at most as wide. A candidate of such a
gripper puts its fingers where the trained gripper's would be at the same opening, inside the
grid, and the opening feature keeps its meaning (a fraction of the *trained* gripper's
widest); only the palm is narrower. A wider gripper's fingers would lie outside the grid and
other fingers elsewhere in it: features the scorer never saw.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from grasp_semantics.gripper import GripperConfig
from grasp_semantics.part_grasps import PlannedGrasps

from .config import GraspScorerConfig

SCORER_DIR = "grasp_scorer"  # beside the grasp weights
FINGER_TOLERANCE = 0.001  # m: finger sizes closer than this to the trained ones are the same
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"


def _grid(cfg: GraspScorerConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Cells per axis [3], the grid's low and high corners [3] (gripper frame) and cell count."""
    cells = np.asarray(cfg.cells)
    return cells, np.asarray(cfg.low), np.asarray(cfg.high), int(cells.prod())


def _features(
    planned: PlannedGrasps, count: np.ndarray, contact_sum: np.ndarray, max_width: float
) -> np.ndarray:
    """``gripper_view``'s features from the per-cell point counts and contact sums [G, cells]."""
    g = len(planned.poses)
    mean_contact = contact_sum / np.maximum(count, 1)
    up = planned.up @ planned.poses[:, :3, :3]  # [G, 3]: rotation^T up, per candidate
    part = np.array([planned.part_rank, planned.part_probability], dtype=np.float64)
    scalars = np.c_[planned.widths / max_width, planned.scores, np.tile(part, (g, 1))]  # [G, 4]
    return np.concatenate([np.log1p(count), mean_contact, up, scalars], axis=1).astype(np.float32)


def _cell_sums(
    bins: np.ndarray, contact: np.ndarray, g: int, n_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Point counts and contact sums [G, n_cells] from each (candidate, point)'s bin [G, L]
    (candidate k's cells are k * n_cells + cell; ``g * n_cells``: outside its grid) and the
    points' contact probabilities [L]: one bincount over all candidates."""
    count = np.bincount(bins.ravel(), minlength=g * n_cells + 1)[:-1].reshape(g, n_cells)
    weights = np.broadcast_to(contact, bins.shape).ravel()
    total = np.bincount(bins.ravel(), weights=weights, minlength=g * n_cells + 1)
    return count, total[:-1].reshape(g, n_cells)


def gripper_view(planned: PlannedGrasps, cfg: GraspScorerConfig, max_width: float) -> np.ndarray:
    """Features [G, cfg.num_features] float32 of each candidate of ``planned``: the voxel grid of
    its surroundings in the gripper frame (count channel, then contact channel, cells in C
    order), the up direction in that frame, opening / ``max_width``, planner quality, and the
    rank and relative probability of the part it was planned on.

    The same numbers as :func:`gripper_view_reference`, computed on less: only points within
    the grid's farthest corner of some candidate's TCP (an axis-aligned cut) can fall in a grid,
    and the gripper-frame coordinates are taken one axis at a time (numpy's batched [G, L, 3] @
    [G, 3, 3] product and its all() over a length-3 axis cost more than the arithmetic).
    """
    cells, low, high, n_cells = _grid(cfg)
    g = len(planned.poses)
    rotation, tcp = planned.poses[:, :3, :3], planned.poses[:, :3, 3]
    reach = float(np.sqrt(np.maximum(low**2, high**2).sum()))
    points, contact = planned.points, planned.contact
    near = np.all((points >= tcp.min(0) - reach) & (points <= tcp.max(0) + reach), axis=1)
    offset = points[near][None] - tcp[:, None]  # [G, L', 3]
    flat = np.zeros(offset.shape[:2], dtype=np.int64)
    inside = np.ones(offset.shape[:2], dtype=bool)
    for k in range(3):  # cell index along the gripper's k-th axis, C order
        local = sum(offset[..., i] * rotation[:, None, i, k] for i in range(3))  # [G, L']
        cell = np.floor((local - low[k]) / (high[k] - low[k]) * cells[k]).astype(np.int64)
        inside &= (cell >= 0) & (cell < cells[k])
        flat = flat * cells[k] + cell
    bins = np.where(inside, flat + n_cells * np.arange(g)[:, None], g * n_cells)
    return _features(planned, *_cell_sums(bins, contact[near], g, n_cells), max_width)


def gripper_view_reference(
    planned: PlannedGrasps, cfg: GraspScorerConfig, max_width: float
) -> np.ndarray:
    """:func:`gripper_view` written straightforwardly (every point in every candidate's frame):
    the reference the bench times it against and the tests compare it with."""
    cells, low, high, n_cells = _grid(cfg)
    g = len(planned.poses)
    rotation, tcp = planned.poses[:, :3, :3], planned.poses[:, :3, 3]
    local = (planned.points[None] - tcp[:, None]) @ rotation  # [G, L, 3]
    cell = np.floor((local - low) / (high - low) * cells).astype(np.int64)  # [G, L, 3]
    inside = np.all((cell >= 0) & (cell < cells), axis=-1)  # [G, L]
    flat = (cell[..., 0] * cells[1] + cell[..., 1]) * cells[2] + cell[..., 2]
    bins = np.where(inside, flat + n_cells * np.arange(g)[:, None], g * n_cells)
    return _features(planned, *_cell_sums(bins, planned.contact, g, n_cells), max_width)


class GraspScorer(nn.Module):
    """MLP over ``gripper_view`` features → logit of grasp success."""

    def __init__(
        self, cfg: GraspScorerConfig | None = None, gripper: GripperConfig | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg or GraspScorerConfig()
        self.gripper = gripper or GripperConfig()  # the one its candidates were planned with
        layers: list[nn.Module] = []
        width = self.cfg.num_features
        for hidden in self.cfg.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(self.cfg.dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        self.base_fingerprint: str | None = None  # of the grasp model it was trained with

    @property
    def max_width(self) -> float:
        """The trained gripper's widest opening: the unit of the opening feature."""
        return self.gripper.max_width

    def unsupported(self, gripper: GripperConfig) -> str:
        """Why this scorer cannot rank candidates planned for ``gripper`` ("" when it can: the
        same fingers, opening at most as wide as the gripper it was trained with; module doc)."""
        trained = self.gripper
        if gripper.max_width > trained.max_width + 1e-9:
            return (
                f"its grasp scorer was trained for a gripper opening at most "
                f"{trained.max_width * 1e3:.0f} mm, not {gripper.max_width * 1e3:.0f} mm (its "
                f"features would miss the wider fingers)"
            )
        for name in ("finger_depth", "finger_thickness", "finger_breadth"):
            mine, theirs = getattr(trained, name), getattr(gripper, name)
            if abs(mine - theirs) > FINGER_TOLERANCE:
                return (
                    f"its grasp scorer was trained for a gripper with {name} "
                    f"{mine * 1e3:.0f} mm, not {theirs * 1e3:.0f} mm (its features are in that "
                    f"gripper's frame)"
                )
        return ""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits [G] of features [G, F]."""
        return self.mlp(features)[:, 0]

    @torch.inference_mode()
    def success_probability(self, planned: PlannedGrasps) -> np.ndarray:
        """Predicted chance [G] that each of ``planned``'s candidates succeeds."""
        if not len(planned.poses):
            return np.zeros(0, dtype=np.float32)
        device = next(self.parameters()).device
        features = torch.from_numpy(gripper_view(planned, self.cfg, self.max_width))
        return torch.sigmoid(self(features.to(device))).cpu().numpy()

    # ------------------------------------------------------------------ files
    def save(self, directory: str | Path, base_fingerprint: str) -> Path:
        """``config.yaml`` (with the grasp model's fingerprint) + ``model.safetensors``."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "scorer": self.cfg.to_dict(),
            "max_width": self.max_width,
            "gripper": dataclasses.asdict(self.gripper),
            "base_fingerprint": base_fingerprint,
        }
        (out / CONFIG_FILE).write_text(yaml.safe_dump(data, sort_keys=False))
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
        return out

    @classmethod
    def load(cls, directory: str | Path, base_fingerprint: str | None = None) -> GraspScorer:
        """A scorer saved by :meth:`save`. With ``base_fingerprint``, raises when it was trained
        with another grasp model (retrain it: ``grasp-semantics train-scorer``)."""
        from safetensors.torch import load_file

        path = Path(directory)
        if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{path} needs {CONFIG_FILE} and {WEIGHTS_FILE}")
        data = yaml.safe_load((path / CONFIG_FILE).read_text())
        if base_fingerprint is not None and data["base_fingerprint"] != base_fingerprint:
            raise RuntimeError(
                f"the grasp scorer in {path} was trained with another grasp model than the one "
                "loaded; retrain it on this one with `grasp-semantics train-scorer --config "
                "config/train_scorer_tiny.yaml`, or remove the directory to rank grasps by the "
                "planner's quality"
            )
        gripper = GripperConfig(**data.get("gripper", {"max_width": float(data["max_width"])}))
        scorer = cls(GraspScorerConfig.from_dict(data["scorer"]), gripper)
        try:
            state = load_file(str(path / WEIGHTS_FILE))
        except Exception as error:  # safetensors says "invalid header length", not which file
            raise ValueError(f"cannot read {path / WEIGHTS_FILE}: {error}") from error
        scorer.load_state_dict(state, strict=True)
        scorer.base_fingerprint = data["base_fingerprint"]
        return scorer.eval()
