"""A ``grasp_semantics`` node in a subprocess and a peer node that feeds and watches it.

The base of the ``stress``, ``soak`` and ``lifecycle-cycle`` commands: they judge the node from
the outside, as a robot would see it, so a crash shows as a dead process (not as an exception
in the test), memory as the process's resident set (``/proc/PID/status``), and health as what
the node publishes on ``/diagnostics`` and ``/rosout``.

The subprocess runs this interpreter's ``grasp_semantics.ros.node.main`` (the
``grasp_semantics_node`` entry point) with its own ``ROS_DOMAIN_ID`` and localhost-only
discovery; this process joins the same domain through its own rclpy context.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Log
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header, String

from grasp_semantics.msg import GraspPrediction
from grasp_semantics.ros.conversions import rgb_to_image, xyz_to_cloud
from grasp_semantics.ros.node import INSTRUCTION_QOS
from grasp_semantics.ros.node_inputs import stamp_ns
from grasp_semantics.srv import DescribeScene, PredictGrasps

NODE_NAME = "grasp_semantics"
FRAME_ID = "camera_color_optical_frame"
# The node's entry point, run by this interpreter so it imports the same grasp_semantics.
NODE_COMMAND = (
    sys.executable,
    "-c",
    "import sys; from grasp_semantics.ros.node import main; sys.exit(main())",
)
ROSOUT_QOS = QoSProfile(  # rcl's rosout profile, so the node's recent log lines are delivered
    depth=1000,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
SENSOR_PUB_QOS = QoSProfile(depth=5)  # reliable: matches the node's best-effort subscriptions
BYTES_PER_MB = 1_000_000


def default_domain_id() -> int:
    """A domain of this process's own (1-100), so two runs on one machine do not meet."""
    return 1 + (os.getpid() + 50) % 100


def isolate_ros(domain_id: int) -> dict[str, str]:
    """Limit this process to localhost discovery (read when an rclpy context starts; the
    :class:`Peer` joins ``domain_id`` itself) and return the node subprocess's environment:
    the same, on ``domain_id``, importing grasp_semantics from where this process does."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; the range above replaces it
    import grasp_semantics

    root = str(Path(grasp_semantics.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "ROS_DOMAIN_ID": str(domain_id),
        "PYTHONPATH": path,
        "PYTHONUNBUFFERED": "1",
    }


def parse_parameters(items: list[str]) -> dict[str, Any]:
    """``name:=value`` strings (values read as YAML, as ``--ros-args -p`` does) as a dict."""
    import yaml

    parameters = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ValueError(f"parameter '{item}' is not name:=value")
        parameters[name] = yaml.safe_load(value)
    return parameters


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MB (10^6 bytes), from ``/proc/PID/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / BYTES_PER_MB
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def _die_with_parent() -> None:
    """In the child: be killed when the process that started it dies (Linux), so a killed
    tool never leaves a node running."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class NodeProcess:
    """The node as a subprocess: start, watch, read its memory, stop (always)."""

    def __init__(self, parameters: dict[str, Any], log_path: Path, env: dict[str, str]) -> None:
        # the tools publish full-size frames reliably: a best-effort subscription loses most of
        # them between processes here (README, "Large messages")
        self.parameters = {"sensor_reliability": "reliable", **parameters}
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self._log_offset = 0

    def start(self) -> None:
        args = [f"{k}:={json.dumps(v)}" for k, v in self.parameters.items()]  # JSON is YAML
        command = [*NODE_COMMAND, "--ros-args", *(a for arg in args for a in ("-p", arg))]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n==== start {self.starts + 1}: {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self.starts += 1
        self._log_offset = self.log_path.stat().st_size

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def new_output(self) -> str:
        """What the node wrote to its log since the last call (or since it started)."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            text = log.read()
        self._log_offset += len(text)
        return text.decode(errors="replace")

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Interrupt the node (a clean shutdown), kill it if it does not exit in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b")


def last_exception(text: str) -> str:
    """The last line naming a Python exception (``ValueError: ...``) in ``text``, or ''."""
    lines = [ANSI_ESCAPE.sub("", line) for line in text.splitlines()]
    found = [line for line in lines if EXCEPTION_LINE.match(line)]
    return found[-1][:400] if found else ""


@dataclass
class Diagnostic:
    """The node's newest status on ``/diagnostics``."""

    level: int
    message: str
    values: dict[str, str]
    received: float  # time.monotonic()


@dataclass
class Observed:
    """What the node published, appended by subscription callbacks under ``cond``."""

    # (time.monotonic(), time.time_ns(), message) at arrival
    predictions: list[tuple[float, int, GraspPrediction]] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


class Peer:
    """An rclpy node (own context, own executor thread) that publishes the node's inputs,
    calls its services and collects its outputs, so that the caller can wait on them."""

    def __init__(self, domain_id: int, node_name: str = NODE_NAME) -> None:
        self.node_name = node_name
        self.context = rclpy.Context()
        # args: not this command's own (rcl would read 'name:=value' ones as remap rules)
        rclpy.init(args=[f"{node_name}_peer"], context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(f"{node_name}_peer", context=self.context)
        make = self.node.create_publisher
        self.image = make(Image, "image", SENSOR_PUB_QOS)
        self.points = make(PointCloud2, "points", SENSOR_PUB_QOS)
        self.camera_info = make(CameraInfo, "camera_info", SENSOR_PUB_QOS)
        self.instruction = make(String, "instruction", INSTRUCTION_QOS)
        self.cond = threading.Condition()
        self.seen = Observed()
        self.node.create_subscription(
            GraspPrediction, f"/{node_name}/prediction", self._on_prediction, 50
        )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.node.create_subscription(Log, "/rosout", self._on_log, ROSOUT_QOS)
        self.predict = self.node.create_client(PredictGrasps, f"/{node_name}/predict")
        self.describe = self.node.create_client(DescribeScene, f"/{node_name}/describe")
        self.change_state = self.node.create_client(ChangeState, f"/{node_name}/change_state")
        self.get_state = self.node.create_client(GetState, f"/{node_name}/get_state")
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    # ------------------------------------------------------------------------- callbacks
    def _on_prediction(self, msg: GraspPrediction) -> None:
        with self.cond:
            self.seen.predictions.append((time.monotonic(), time.time_ns(), msg))
            self.cond.notify_all()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.lstrip("/") != self.node_name:
                continue
            with self.cond:
                self.seen.diagnostics.append(
                    Diagnostic(
                        int.from_bytes(status.level)
                        if isinstance(status.level, bytes)
                        else int(status.level),
                        status.message,
                        {kv.key: kv.value for kv in status.values},
                        time.monotonic(),
                    )
                )
                self.cond.notify_all()

    def _on_log(self, msg: Log) -> None:
        if msg.name != self.node_name:
            return
        with self.cond:
            self.seen.logs.append(msg)
            self.cond.notify_all()

    # --------------------------------------------------------------------------- waiting
    def wait(self, condition: Any, timeout_s: float, process: NodeProcess | None = None) -> bool:
        """Block until ``condition()`` holds (checked whenever the node publishes something),
        at most ``timeout_s``; False on timeout or when ``process`` died meanwhile."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0 or (process is not None and not process.alive()):
                    return False
                self.cond.wait(min(left, 0.1))  # 0.1 s: also notice a dead process
        return True

    def call(
        self, client: Any, request: Any, timeout_s: float, process: NodeProcess | None = None
    ) -> Any | None:
        """A service call's response, or None when none came in time (or the node died)."""
        future = client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        deadline = time.monotonic() + timeout_s
        while not done.wait(0.1):
            if time.monotonic() > deadline or (process is not None and not process.alive()):
                client.remove_pending_request(future)
                return None
        return future.result()

    def wait_ready(self, process: NodeProcess, timeout_s: float, active: bool = True) -> None:
        """Wait until the node is up: its lifecycle services answer and, when ``active``, it
        has subscribed to image and points and serves ``~/predict``."""
        deadline = time.monotonic() + timeout_s

        def ready() -> bool:
            if not self.get_state.service_is_ready():
                return False
            if not active:
                return True
            return (
                self.predict.service_is_ready()
                and self.image.get_subscription_count() > 0
                and self.points.get_subscription_count() > 0
            )

        pause = threading.Event()  # never set: a bounded pause between checks
        while not ready():
            if not process.alive():
                raise RuntimeError(
                    f"the node exited with code {process.returncode()} while starting "
                    f"(log: {process.log_path}): {last_exception(process.new_output())}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the node was not ready within {timeout_s} s")
            pause.wait(0.1)

    def close(self) -> None:
        self.executor.shutdown()
        self._spinner.join(timeout=10)
        self.node.destroy_node()
        self.context.try_shutdown()


# ----------------------------------------------------------------------------- valid input
def header_at(ns: int, frame_id: str = FRAME_ID) -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(int(ns), 1_000_000_000)
    return header


@dataclass
class SceneInputs:
    """One scene's inputs as arrays, turned into messages with any stamp."""

    rgb: np.ndarray  # [H, W, 3] uint8
    intrinsics: np.ndarray  # [3, 3]
    points: np.ndarray  # [N, 3] float32
    instruction: str

    def image(self, ns: int, rgb: np.ndarray | None = None) -> Image:
        return rgb_to_image(self.rgb if rgb is None else rgb, header_at(ns))

    def cloud(self, ns: int, points: np.ndarray | None = None) -> PointCloud2:
        return xyz_to_cloud(self.points if points is None else points, header_at(ns))

    def reduced(self, step: int = 4, points: int = 5000) -> SceneInputs:
        """The same scene with every ``step``-th pixel (intrinsics to match) and ``points``
        points of its cloud (a fixed subset): messages of tens of kB instead of ~1 MB."""
        scale = np.diag([1.0 / step, 1.0 / step, 1.0])
        keep = np.sort(np.random.default_rng(0).permutation(len(self.points))[:points])
        return SceneInputs(
            np.ascontiguousarray(self.rgb[::step, ::step]),
            (scale @ np.asarray(self.intrinsics, np.float64)).astype(np.float32),
            np.ascontiguousarray(self.points[keep]),
            self.instruction,
        )

    def camera_info(self, ns: int) -> CameraInfo:
        h, w = self.rgb.shape[:2]
        info = CameraInfo(header=header_at(ns), width=w, height=h)
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = np.asarray(self.intrinsics, np.float64).ravel().tolist()
        info.r = np.eye(3).ravel().tolist()
        info.p = np.c_[np.asarray(self.intrinsics, np.float64), np.zeros(3)].ravel().tolist()
        return info


def held_out_scenes(count: int) -> list[SceneInputs]:
    """The first ``count`` scenes of the demo's sample bag (held-out instances, fixed seed),
    generated directly rather than read from a bag."""
    from grasp_semantics.data.scene import generate_scene
    from grasp_semantics.ros.demo import SAMPLE_SEED, SAMPLE_SPLIT

    scenes = [generate_scene(SAMPLE_SEED + i, SAMPLE_SPLIT) for i in range(count)]
    return [
        SceneInputs(s.rgb, s.intrinsics, s.points.astype(np.float32), s.instruction)
        for s in scenes
    ]


def publish_pair(peer: Peer, scene: SceneInputs, ns: int, **overrides: Any) -> None:
    """camera_info, image, then cloud of one stamp (the cloud last: it completes the pair)."""
    peer.camera_info.publish(overrides.get("camera_info") or scene.camera_info(ns))
    peer.image.publish(overrides.get("image") or scene.image(ns))
    peer.points.publish(overrides.get("cloud") or scene.cloud(ns))


def prediction_for(peer: Peer, ns: int) -> GraspPrediction | None:
    """The prediction whose header carries stamp ``ns`` (call under ``peer.cond``)."""
    for _, _, msg in reversed(peer.seen.predictions):
        if stamp_ns(msg.header) == ns:
            return msg
    return None


def now_ns() -> int:
    return time.time_ns()


def summarize(values: list[float]) -> dict[str, float | None]:
    """Median and 95th percentile (None for no values), rounded for reports."""
    if not values:
        return {"median": None, "p95": None}
    array = np.asarray(values, dtype=np.float64)
    return {
        "median": round(float(np.median(array)), 2),
        "p95": round(float(np.percentile(array, 95)), 2),
    }


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every tool that runs a node subprocess takes."""
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="node parameter (repeatable); the tools set max_rate_hz:=0.0 (stress) and "
        "sensor_reliability:=reliable unless given",
    )
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID to use")
    parser.add_argument("--log", type=Path, default=None, help="node output log (default: tmp)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
