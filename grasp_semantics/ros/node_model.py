"""The node's model: the core predictor made from the node's parameters (torch is imported
only when it loads: it takes seconds), the line that says what was loaded, and its memory
returned at cleanup."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

from grasp_semantics.models.config import GripperConfig

# the node's parameters the model is loaded with
MODEL_PARAMETERS = (
    "model",
    "device",
    "dtype",
    "num_points",
    "compile",
    "grasp_scorer",
    "max_cloud_points",
    "fusion_mode",
)


def gripper_from(param: Callable[[str], Any]) -> GripperConfig:
    """The gripper the ``gripper.*`` parameters describe (a ValueError when it cannot be)."""
    return GripperConfig(
        max_width=param("gripper.max_width"),
        finger_depth=param("gripper.finger_depth"),
        tcp_depth=param("gripper.tcp_depth"),
    )


def load_predictor(values: dict[str, Any], gripper: GripperConfig) -> Any:
    """The core predictor for the node's parameter ``values`` (``MODEL_PARAMETERS``),
    planning for ``gripper``; a ValueError when its grasp scorer cannot rank for that gripper
    or the checkpoint's fusion is not ``fusion_mode``.

    With ``compile`` the network is compiled here, by a warm-up on synthetic inputs, rather
    than on the first camera frame.
    """
    from grasp_semantics.inference.predictor import GraspPredictor

    predictor = GraspPredictor.from_pretrained(
        values["model"],
        device=values["device"],
        dtype=None if values["dtype"] == "auto" else values["dtype"],
        compile=values["compile"],
        scorer=values["grasp_scorer"],
        max_cloud_points=values["max_cloud_points"] or None,  # 0: every point
        gripper=gripper,
    )
    model_fusion = predictor.model.cfg.fusion.mode
    if values["fusion_mode"] and values["fusion_mode"] != model_fusion:
        raise ValueError(
            f"fusion_mode '{values['fusion_mode']}' does not match the checkpoint's "
            f"'{model_fusion}'"
        )
    predictor.num_points = values["num_points"]
    if values["compile"]:
        predictor.warm_up()
    return predictor


def loaded_summary(model: str, predictor: Any) -> str:
    """What was loaded and how its grasps are planned and ranked, for the log."""
    cfg, gripper = predictor.model.cfg, predictor.gripper
    return (
        f"configured: model '{model}' ({cfg.name}, backbone {cfg.encoder.backbone.name}, "
        f"fusion {cfg.fusion.mode}) on {predictor.device}; grasps planned for a gripper "
        f"opening {gripper.max_width * 1e3:.0f} mm, fingers {gripper.finger_depth * 1e3:.0f}"
        f" mm, TCP {gripper.tcp_depth * 1e3:.0f} mm behind the fingertips, ranked by "
        + ("its grasp scorer" if predictor.scorer is not None else "the planner's quality")
    )


def release_memory() -> None:
    """Return a dropped model's memory (and GPU memory) to the system."""
    gc.collect()
    torch = sys.modules.get("torch")  # not imported just to release: that takes seconds
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
