"""The node's parameters: one table of names, defaults, ranges and descriptions.

``config/grasp_semantics.yaml`` and the launch file's arguments mirror this table; a test keeps
them in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from grasp_semantics.inference.instructions import MAX_INSTRUCTION_CHARS


@dataclass(frozen=True)
class Param:
    """One declared parameter. ``dynamic`` ones may change while the node runs."""

    name: str
    default: Any
    description: str
    range: tuple[float, float] | None = None
    dynamic: bool = False
    choices: tuple[str, ...] = ()

    def descriptor(self) -> ParameterDescriptor:
        text = self.description
        if self.choices:
            text += f" One of: {', '.join(self.choices)}."
        if not self.dynamic:
            text += " Read at configure."
        descriptor = ParameterDescriptor(
            name=self.name, description=text, read_only=False, dynamic_typing=False
        )
        if self.range is not None and isinstance(self.default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=self.range[0], to_value=self.range[1], step=0.0)
            ]
        elif self.range is not None and isinstance(self.default, int):
            descriptor.integer_range = [
                IntegerRange(from_value=int(self.range[0]), to_value=int(self.range[1]), step=1)
            ]
        return descriptor


PARAMETERS: tuple[Param, ...] = (
    Param(
        "model",
        "default",
        "Model to load: a registered name ('default' = the shipped tiny model) or a checkpoint "
        "directory with config.yaml and model.safetensors.",
    ),
    Param("device", "auto", "Torch device.", choices=("auto", "cpu", "cuda", "cuda:0", "mps")),
    Param(
        "dtype",
        "auto",
        "Compute dtype; auto = bfloat16 on CUDA, float32 otherwise.",
        choices=("auto", "float32", "bfloat16"),
    ),
    Param("num_points", 2048, "Points the network samples from each cloud.", (256, 65536)),
    Param(
        "max_cloud_points",
        40000,
        "Larger clouds are thinned to this many points (a seeded uniform subsample) before "
        "sampling and grasp planning: the density the model and its grasp scorer were trained "
        "at, and a bound on the cost of a dense camera's cloud. 0 keeps every point.",
        (0, 100_000_000),
    ),
    Param(
        "compile",
        False,
        "torch.compile the point network, fusion and heads, with a warm-up at configure "
        "(slower configure, faster predictions where the compiler helps).",
    ),
    Param(
        "grasp_scorer",
        True,
        "Rank the grasps planned across the part by the model's learned grasp scorer "
        "(grasp_scorer/ beside its weights) when it has one; false ranks them by the "
        "planner's hand-made quality.",
    ),
    Param("max_grasps", 10, "Largest number of grasps published per prediction.", (1, 200), True),
    Param(
        "score_threshold",
        0.0,
        "Grasps scoring below this are not published.",
        (0.0, 1.0),
        True,
    ),
    Param(
        "max_rate_hz",
        10.0,
        "Upper bound on predictions per second; 0 = as fast as inputs arrive.",
        (0.0, 1000.0),
        True,
    ),
    Param(
        "slop_s",
        0.05,
        "Largest stamp difference, in seconds, for an image and a cloud to form a pair.",
        (0.0, 10.0),
        True,
    ),
    Param(
        "sensor_reliability",
        "best_effort",
        "QoS reliability of the image, points and camera_info subscriptions (sensor-data QoS, "
        "depth 1, otherwise). best_effort matches every publisher but loses a message any of "
        "whose fragments is lost, which over UDP is every message of several MB; reliable "
        "receives them from reliable publishers (most camera drivers). See README, 'Large "
        "messages', for the shared-memory profile that carries them best-effort.",
        choices=("best_effort", "reliable"),
    ),
    Param(
        "max_stamp_rewind_s",
        1.0,
        "A pair stamped at most this much older than the last predicted one came out of order "
        "and is skipped; an older one means time jumped back (a looping bag, a clock reset) and "
        "restarts the ordering.",
        (0.0, 3600.0),
        True,
    ),
    Param(
        "service_timeout_s",
        10.0,
        "Longest a ~/predict or ~/describe request waits for the model while it serves others; "
        "then it is answered 'busy'.",
        (0.1, 600.0),
        True,
    ),
    Param(
        "watchdog_timeout_s",
        30.0,
        "A prediction running longer than this is reported on /diagnostics as a stuck worker.",
        (1.0, 3600.0),
        True,
    ),
    Param(
        "instruction",
        "",
        "Current instruction (printable, at most "
        f"{MAX_INSTRUCTION_CHARS} characters: the predictor's rules); the instruction topic "
        "overrides it. Empty = wait for the topic.",
        dynamic=True,
    ),
    Param(
        "fusion_mode",
        "",
        "Point/semantics fusion: empty = the model's own; 'global' or 'pixel_aligned' must "
        "match the checkpoint.",
        choices=("", "global", "pixel_aligned"),
    ),
    Param(
        "gripper.max_width",
        0.08,
        "Largest finger opening, metres: grasps are planned for it, checked against the cloud "
        "with it, drawn with it and never wider. A model's grasp scorer ranks only for a "
        "gripper opening at most as wide as the one it was trained for (the shipped one: "
        "80 mm) with the same fingers; for another, configure fails unless grasp_scorer is "
        "false (grasps then ranked by the planner's quality).",
        (0.02, 0.5),
    ),
    Param(
        "gripper.finger_depth",
        0.045,
        "Finger length along the approach axis, metres (planning, collision checks, markers; "
        "the shipped grasp scorer was trained with 0.045).",
        (0.005, 0.3),
    ),
    Param(
        "gripper.tcp_depth",
        0.0,
        "Where the published grasp poses put the robot's tool centre point: this far behind "
        "the fingertips' midpoint along the approach axis, metres. 0 = between the fingertips "
        "(the planning frame); finger_depth / 2 = between the finger pads' centres.",
        (-0.5, 0.5),
    ),
    Param("autostart", True, "Configure and activate on start-up (no lifecycle manager)."),
)

BY_NAME: dict[str, Param] = {param.name: param for param in PARAMETERS}
DYNAMIC: frozenset[str] = frozenset(p.name for p in PARAMETERS if p.dynamic)
