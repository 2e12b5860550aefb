"""Grasp scorer: an MLP from a planned grasp's features to the logit of its success.

The planner (``grasping/part_planning.py``) proposes grasps across the part the network says
to touch and ranks them by a hand-made quality (contact probability between the fingers x a
preference for closing straight across); that quality cannot see that a finger would land on
the part's rounded top rather than its side, or on a neighbouring part. This network ranks
instead, from what the sensor saw around each candidate in the gripper's frame
(``grasping/scorer_features.py``: ``gripper_view``). It is trained
(``training/train_scorer.py``) on candidates planned on training scenes, each labelled by the
evaluation's grasp checks, so it learns the metric from geometry the robot can observe.

The scorer depends on the contact probabilities of the grasp model it was trained with: its
directory (``grasp_scorer/`` beside the grasp weights: ``config.yaml`` +
``model.safetensors``) records a fingerprint of those weights, and loading it for another
model raises.

It also depends on the gripper its candidates were planned and labelled with (``gripper`` in
its config; older files record only the opening, the rest being ``GripperConfig``'s
defaults): its features are fixed in that gripper's frame, sized to hold its fingers at their
widest. :meth:`GraspScorer.unsupported` says which grippers it can rank for: those with the
same fingers (depth, thickness, breadth) opening at most as wide. A candidate of such a
gripper puts its fingers where the trained gripper's would be at the same opening, and the
opening feature keeps its meaning (a fraction of the *trained* gripper's widest); a wider
gripper's fingers would lie where the scorer never saw fingers.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from grasp_semantics.models.config import GraspScorerConfig, GripperConfig

SCORER_DIR = "grasp_scorer"  # beside the grasp weights
FINGER_TOLERANCE = 0.001  # m: finger sizes closer than this to the trained ones are the same
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"


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
    def success_probability(self, features: np.ndarray) -> np.ndarray:
        """Predicted chance [G] that each candidate succeeds, from its features [G, F]."""
        device = next(self.parameters()).device
        return torch.sigmoid(self(torch.from_numpy(features).to(device))).cpu().numpy()

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
