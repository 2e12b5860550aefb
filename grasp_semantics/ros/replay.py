"""Play a rosbag2 through the real node over real topics and record what it publishes.

    grasp-semantics replay IN_BAG --out OUT_BAG [--model default] [--realtime]

The bag is read with the ``rosbags`` library (mcap or sqlite3 storage, no ``ros2 bag`` needed),
its messages are deserialised into rclpy types and published in stamp order to a
``grasp_semantics`` node running in this process, and the node's outputs are written to a new
mcap bag. By default playback is in lock step: each image/cloud pair waits for its prediction
(or its rejection), so every pair is predicted once. ``--realtime`` keeps the bag's timing
instead, which shows what the node drops when the model is slower than the sensor.

On a robot the same is done with ``ros2 bag play IN_BAG`` and
``ros2 bag record -s mcap -o OUT_BAG /grasp_semantics/prediction /grasp_semantics/markers ...``.
"""

from __future__ import annotations

import argparse
import importlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from tqdm import tqdm

from grasp_semantics.ros.node import (
    INSTRUCTION_QOS,
    GraspSemanticsNode,
    stamp_ns,
)
from grasp_semantics.share import share_directory

# The node's inputs and the bag topics they come from by default (the sample bag's names).
DEFAULT_INPUTS = {
    "image": "/camera/color/image_raw",
    "camera_info": "/camera/color/camera_info",
    "points": "/camera/depth/points",
    "instruction": "/grasp_semantics/instruction",
}
# The node's outputs (relative to its name) and their types.
OUTPUTS = {
    "prediction": "grasp_semantics/msg/GraspPrediction",
    "contacts": "sensor_msgs/msg/PointCloud2",
    "grasps": "geometry_msgs/msg/PoseArray",
    "markers": "visualization_msgs/msg/MarkerArray",
}


def message_class(msgtype: str) -> type:
    """The rclpy class of a ROS type name such as ``sensor_msgs/msg/Image``."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def output_typestore() -> Any:
    """A rosbags typestore that knows the package's own message definitions."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    msg_dir = share_directory() / "msg"  # the source tree's msg/ or share/grasp_semantics/msg
    definitions = sorted(msg_dir.glob("*.msg"))
    if not definitions:
        raise FileNotFoundError(f"no message definitions (*.msg) in {msg_dir}")
    types: dict[str, Any] = {}
    for path in definitions:
        types.update(get_types_from_msg(path.read_text(), f"grasp_semantics/msg/{path.stem}"))
    typestore.register(types)
    return typestore


@dataclass
class ReplaySummary:
    """What a replay did, for printing and for scoring against ground truth."""

    pairs: int = 0
    predictions: int = 0
    rejected: int = 0
    instructions: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    # one entry per prediction: (cloud stamp ns, GraspPrediction)
    results: list[tuple[int, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        latency = np.asarray(self.latencies_ms or [np.nan])
        return {
            "pairs": self.pairs,
            "predictions": self.predictions,
            "dropped_or_rejected_pairs": self.pairs - self.predictions,
            "rejected_inputs": self.rejected,
            "instructions": self.instructions,
            "latency_ms_median": float(np.median(latency)),
            "latency_ms_p95": float(np.percentile(latency, 95)),
        }


class _Recorder:
    """Subscribes to the node's outputs and writes them to an mcap bag; ``changed`` is notified
    on each output and each diagnostics message (the node publishes one on every rejected
    input), so the player waits on events rather than polling the node."""

    def __init__(self, node: Any, node_name: str, out_bag: Path) -> None:
        self.writer = Writer(out_bag, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        typestore = output_typestore()
        self.predictions: list[Any] = []
        self.counts = dict.fromkeys(OUTPUTS, 0)
        self.changed = threading.Condition()
        self._subscriptions = []
        for name, msgtype in OUTPUTS.items():
            topic = f"/{node_name}/{name}"
            connection = self.writer.add_connection(topic, msgtype, typestore=typestore)
            self._subscriptions.append(
                node.create_subscription(
                    message_class(msgtype),
                    topic,
                    lambda msg, c=connection, n=name: self._on_message(c, n, msg),
                    100,
                )
            )
        self._subscriptions.append(
            node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        )

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait(self, condition: Any, timeout_s: float) -> bool:
        """Block until ``condition()`` holds, re-checked on each output (at most ``timeout_s``)."""
        with self.changed:
            return self.changed.wait_for(condition, timeout_s)

    def _on_message(self, connection: Any, name: str, msg: Any) -> None:
        with self.changed:
            self.writer.write(connection, stamp_ns(_header(msg)), serialize_message(msg))
            self.counts[name] += 1
            if name == "prediction":
                self.predictions.append(msg)
            self.changed.notify_all()

    def close(self) -> None:
        with self.changed:
            self.writer.close()


def _header(msg: Any) -> Any:
    return msg.header if hasattr(msg, "header") else msg.markers[0].header


def replay(
    in_bag: Path,
    out_bag: Path,
    model: str = "default",
    inputs: dict[str, str] | None = None,
    realtime: bool = False,
    timeout_s: float = 60.0,
    parameters: dict[str, Any] | None = None,
    progress: bool = True,
) -> ReplaySummary:
    """Replay ``in_bag`` through a fresh node and record its outputs to ``out_bag``."""
    inputs = {**DEFAULT_INPUTS, **(inputs or {})}
    context = rclpy.Context()
    rclpy.init(context=context)
    remaps = [arg for name, topic in inputs.items() for arg in ("-r", f"{name}:={topic}")]
    overrides = {"model": model, "max_rate_hz": 0.0, "autostart": False, **(parameters or {})}
    node = GraspSemanticsNode(
        context=context,
        cli_args=["--ros-args", *remaps],
        parameter_overrides=[rclpy.parameter.Parameter(k, value=v) for k, v in overrides.items()],
    )
    player = rclpy.create_node("grasp_semantics_player", context=context)
    recorder = _Recorder(player, node.get_name(), out_bag)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(node)
    executor.add_node(player)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    summary = ReplaySummary()
    try:
        node.trigger_configure()
        if not node.is_configured:
            raise RuntimeError(
                f"the node could not load model '{model}': {node.health.last_error}"
            )
        node.trigger_activate()
        _play(in_bag, inputs, node, player, recorder, summary, realtime, timeout_s, progress)
        # the other outputs of the last prediction are published right after it
        recorder.wait(lambda: len(set(recorder.counts.values())) == 1, 5.0)
    finally:
        executor.shutdown()
        spinner.join(timeout=10)
        recorder.close()
        node.on_shutdown(None)
        node.destroy_node()
        player.destroy_node()
        context.try_shutdown()
    summary.results = [(stamp_ns(p.header), p) for p in recorder.predictions]
    summary.predictions = len(recorder.predictions)
    summary.latencies_ms = [p.inference_ms for p in recorder.predictions]
    summary.rejected = node.health.rejected
    return summary


def _play(
    in_bag: Path,
    inputs: dict[str, str],
    node: GraspSemanticsNode,
    player: Any,
    recorder: _Recorder,
    summary: ReplaySummary,
    realtime: bool,
    timeout_s: float,
    progress: bool,
) -> None:
    role_of = {topic: role for role, topic in inputs.items()}
    with Reader(in_bag) as reader:
        connections = [c for c in reader.connections if c.topic in role_of]
        missing = set(inputs) - {role_of[c.topic] for c in connections} - {"camera_info"}
        if missing:
            raise ValueError(f"bag {in_bag} has no topic for {', '.join(sorted(missing))}")
        publishers = {
            c.topic: player.create_publisher(
                message_class(c.msgtype),
                c.topic,
                INSTRUCTION_QOS if role_of[c.topic] == "instruction" else QoSProfile(depth=10),
            )
            for c in connections
        }
        _wait_matched(publishers.values())
        total = sum(c.msgcount for c in connections)
        started_wall, started_bag = time.monotonic(), None
        bar = tqdm(total=total, desc="replay", unit="msg", disable=not progress)
        pending: dict[str, int] = {}  # role -> stamp of the newest unpaired image/cloud
        for connection, timestamp, raw in reader.messages(connections=connections):
            role = role_of[connection.topic]
            msg = deserialize_message(bytes(raw), message_class(connection.msgtype))
            if realtime:
                started_bag = started_bag or timestamp
                delay = (timestamp - started_bag) / 1e9 - (time.monotonic() - started_wall)
                if delay > 0:
                    time.sleep(delay)
            before = (len(recorder.predictions), node.health.rejected)
            publishers[connection.topic].publish(msg)
            bar.update()
            if role == "instruction":
                summary.instructions += 1
                _wait(lambda m=msg: node.current_instruction == m.data.strip(), timeout_s)
            elif role in ("image", "points"):
                pending[role] = stamp_ns(msg.header)
                if len(pending) == 2:
                    summary.pairs += 1
                    pending.clear()
                    if not realtime:
                        recorder.wait(
                            lambda b=before: (
                                (len(recorder.predictions), node.health.rejected) != b
                            ),
                            timeout_s,
                        )
        bar.close()
        if realtime:  # let the last prediction arrive
            recorder.wait(lambda: len(recorder.predictions) >= summary.pairs, 5.0)


def _wait(condition: Any, timeout_s: float) -> bool:
    pause = threading.Event()
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.005)
    return True


def _wait_matched(publishers: Any, timeout_s: float = 10.0) -> None:
    for publisher in publishers:
        if not _wait(lambda p=publisher: p.get_subscription_count() > 0, timeout_s):
            raise TimeoutError(f"the node did not subscribe to {publisher.topic_name}")


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("in_bag", type=Path, help="input rosbag2 directory (mcap or sqlite3)")
    parser.add_argument("--out", type=Path, required=True, help="output bag directory (new)")
    parser.add_argument("--model", default="default", help="model name or checkpoint dir")
    parser.add_argument("--realtime", action="store_true", help="keep the bag's timing")
    for role, topic in DEFAULT_INPUTS.items():
        parser.add_argument(f"--{role.replace('_', '-')}-topic", default=topic, dest=role)


def run(args: argparse.Namespace, command: str) -> int:
    inputs = {role: getattr(args, role) for role in DEFAULT_INPUTS}
    summary = replay(args.in_bag, args.out, args.model, inputs, realtime=args.realtime)
    for key, value in summary.as_dict().items():
        print(f"{key:>26}: {value:.1f}" if isinstance(value, float) else f"{key:>26}: {value}")
    print(f"{'output bag':>26}: {args.out}")
    return 0
