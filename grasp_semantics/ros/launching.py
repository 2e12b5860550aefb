"""What ``launch/grasp_semantics.launch.py`` decides, kept free of ``launch`` so it is tested
where launch is not installed: the launch arguments, which of them override the params file,
how the node's topics resolve in a namespace, and the rviz config for those topics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

NODE_NAME = "grasp_semantics"

# The node's inputs: relative names it subscribes to, remapped by the launch arguments.
INPUTS = ("image", "camera_info", "points", "instruction")
# Its outputs, private names (~/...).
OUTPUTS = ("prediction", "contacts", "grasps", "markers")
# Launch arguments that override a parameter of the params file when given (not empty), and
# the type each is passed as (a model directory named 2024 stays the string '2024').
OVERRIDES: dict[str, type] = {"model": str, "device": str, "autostart": bool}

# name -> (default, description). Relative topic defaults resolve in `namespace`, so two
# namespaced instances do not share their inputs; an absolute name (/camera/...) does not move.
ARGUMENTS: dict[str, tuple[str, str]] = {
    "params_file": (
        "config/grasp_semantics.yaml",
        "Parameters YAML for the node (default: the installed config/grasp_semantics.yaml).",
    ),
    "model": ("", "Model name or checkpoint directory; empty: the params file's (default)."),
    "device": ("", "Torch device (auto, cpu, cuda, cuda:0, mps); empty: the params file's."),
    "autostart": (
        "",
        "true: configure and activate without a lifecycle manager; false: wait for one; "
        "empty: the params file's (true).",
    ),
    "namespace": (
        "",
        "Namespace of the node: its outputs become /<namespace>/grasp_semantics/*, and the "
        "relative input topics below /<namespace>/...; absolute input topics stay as given.",
    ),
    "image": (
        "camera/color/image_raw",
        "RGB image topic (sensor_msgs/Image); relative names resolve in the namespace.",
    ),
    "camera_info": (
        "camera/color/camera_info",
        "Camera info of the RGB image; relative names resolve in the namespace.",
    ),
    "points": (
        "camera/depth/points",
        "Point cloud topic of the same camera (sensor_msgs/PointCloud2); relative names "
        "resolve in the namespace.",
    ),
    "instruction": (
        "grasp_semantics/instruction",
        "Instruction topic (std_msgs/String); relative names resolve in the namespace.",
    ),
    "rviz": (
        "false",
        "true: open rviz2 with config/grasp_semantics.rviz, its topics rewritten for the "
        "namespace and the input topics given; skipped, with a message, without rviz2.",
    ),
}


def parameter_overrides(values: Mapping[str, str]) -> dict[str, str]:
    """The launch arguments of :data:`OVERRIDES` that were given (not empty): only these
    override the params file."""
    return {name: values[name] for name in OVERRIDES if values.get(name, "").strip()}


def normalise_namespace(namespace: str) -> str:
    """``''`` -> ``'/'``, ``'robot1'`` or ``'/robot1/'`` -> ``'/robot1'``."""
    return "/" + namespace.strip().strip("/")


def resolve_topic(name: str, namespace: str = "", node: str = NODE_NAME) -> str:
    """The fully qualified name ROS gives ``name`` (absolute, relative or ``~/`` private) for
    node ``node`` in ``namespace``."""
    if name.startswith("/"):
        return name
    base = normalise_namespace(namespace).rstrip("/")
    if name == "~" or name.startswith("~/"):
        return f"{base}/{node}{name[1:]}".rstrip("/")
    return f"{base}/{name}"


def node_topics(namespace: str, inputs: Mapping[str, str]) -> dict[str, str]:
    """Every topic of the node by role (inputs as remapped to ``inputs``, outputs), fully
    qualified for ``namespace``."""
    topics = {role: resolve_topic(inputs[role], namespace) for role in INPUTS}
    topics.update({role: resolve_topic(f"~/{role}", namespace) for role in OUTPUTS})
    return topics


def rviz_config(template: str, namespace: str, inputs: Mapping[str, str]) -> str:
    """The rviz config ``template`` (written for the default topics, no namespace) with every
    display's topic replaced by the node's for ``namespace`` and ``inputs``.

    Raises ValueError for a display topic that is none of the node's (the template and this
    mapping must not drift apart).
    """
    defaults = node_topics("", {role: ARGUMENTS[role][0] for role in INPUTS})
    actual = node_topics(namespace, inputs)
    mapping = {defaults[role]: actual[role] for role in defaults}
    document = yaml.safe_load(template)
    for display in _displays(document):
        topic = display.get("Topic")
        if not isinstance(topic, dict) or "Value" not in topic:
            continue
        if topic["Value"] not in mapping:
            raise ValueError(
                f"rviz display {display.get('Name')!r} shows {topic['Value']!r}, none of the "
                f"node's default topics {sorted(mapping)}"
            )
        topic["Value"] = mapping[topic["Value"]]
    return yaml.safe_dump(document, sort_keys=False)


def _displays(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The displays of an rviz config, groups flattened."""
    pending = list(document.get("Visualization Manager", {}).get("Displays", []))
    found = []
    while pending:
        display = pending.pop(0)
        found.append(display)
        pending.extend(display.get("Displays", []))
    return found
