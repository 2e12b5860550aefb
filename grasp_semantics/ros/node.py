"""The grasp_semantics lifecycle node: image + cloud + instruction in, functional grasps out.

Lifecycle: configure reads the parameters, loads the model and creates publishers and services;
activate subscribes to the sensors and starts predicting; deactivate stops; cleanup frees the
model (and GPU memory). With ``autostart`` (the default) the node configures and activates
itself; set it false to let a lifecycle manager drive it.

Topics (relative names, remappable): subscribes ``image`` (sensor_msgs/Image), ``points``
(sensor_msgs/PointCloud2), ``camera_info`` (sensor_msgs/CameraInfo) with sensor-data QoS and
``instruction`` (std_msgs/String, reliable + transient-local); publishes ``~/prediction``,
``~/contacts``, ``~/grasps``, ``~/markers`` and ``/diagnostics``. Services ``~/predict`` and
``~/describe``.

Predictions run on a worker thread that takes the newest image/cloud pair, so a slow model
never builds a queue. Nothing a message carries can end the worker, a callback or the process:
every failure is caught where the input enters, logged, reported on /diagnostics (ERROR) and
in the service's answer, and the node goes on. A watchdog restarts a worker that died and
reports one stuck in a prediction. The worker and the two services take the model in turn
(a fair lock, each in its own callback group), so none can starve another, and a request that
cannot have the model within ``service_timeout_s`` is answered "busy".
"""

from __future__ import annotations

import functools
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from grasp_semantics.inference.instructions import check_instruction_text
from grasp_semantics.models.config import GripperConfig
from grasp_semantics.msg import GraspPrediction
from grasp_semantics.ros.conversions import (
    ConversionError,
    camera_info_to_intrinsics,
    cloud_to_xyz,
    image_to_rgb,
)
from grasp_semantics.ros.diagnostics import Health
from grasp_semantics.ros.messages import markers_msg, pose_array_msg, prediction_msg
from grasp_semantics.ros.node_inputs import CameraInfos, sensor_qos, stamp_ns
from grasp_semantics.ros.node_model import (
    MODEL_PARAMETERS,
    gripper_from,
    load_predictor,
    loaded_summary,
    release_memory,
)
from grasp_semantics.ros.node_services import NodeServices
from grasp_semantics.ros.parameters import BY_NAME, DYNAMIC, PARAMETERS
from grasp_semantics.ros.prediction_worker import PredictionWorker
from grasp_semantics.ros.sync import Busy, ModelThread, NewestPairSync, StampOrder
from grasp_semantics.srv import DescribeScene, PredictGrasps

CAMERA_INFO_WAIT_S = 5.0  # how long a pair waits for its own camera_info before failing
INSTRUCTION_QOS = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def guarded(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A callback that reports whatever it raises instead of ending the executor's spin (an
    exception leaving a callback stops ``executor.spin()`` and with it the process)."""

    def wrap(callback: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(callback)
        def run(self: GraspSemanticsNode, *args: Any) -> None:
            try:
                callback(self, *args)
            except Exception as error:
                self._report_failure(f"{what} failed", error)

        return run

    return wrap


class GraspSemanticsNode(NodeServices, LifecycleNode):
    """Lifecycle node wrapping :class:`grasp_semantics.inference.predictor.GraspPredictor`."""

    def __init__(self, node_name: str = "grasp_semantics", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        for param in PARAMETERS:
            self.declare_parameter(param.name, param.default, param.descriptor())
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.health = Health(self.get_fully_qualified_name(), hardware_id="grasp_semantics")
        self.sync = NewestPairSync(slop_ns=0)
        self.predictor: Any = None
        self._describer: Any = None  # attached to the predictor's backbone on first use
        self.gripper = GripperConfig()
        self._configured = False
        self._active = False
        self._instruction = ""
        self._latest_image: Image | None = None
        self._latest_cloud: PointCloud2 | None = None
        self.camera_infos = CameraInfos()
        self._order = StampOrder(0, 0)  # both bounds: max_stamp_rewind_s, read per pair
        self._model = ModelThread()
        # late-bound: configure replaces the sync, a test replaces _predict_pair
        self.worker = PredictionWorker(
            lambda timeout: self.sync.take(timeout=timeout),
            lambda pair: self._predict_pair(pair),
            lambda: self._param("max_rate_hz"),
            self._report_failure,
        )
        self._outputs: dict[str, Any] = {}
        self._sensor_subs: list[Any] = []
        self._own_services: list[Any] = []
        self._own_timers: list[Any] = []
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # One group each: a long prediction on one service never holds back the other, the
        # sensor callbacks or the diagnostics and watchdog timer; camera_info is apart from the
        # image and cloud, so that taking a large pair never delays the camera_info it waits for.
        self._groups = {
            name: MutuallyExclusiveCallbackGroup()
            for name in ("predict", "describe", "inputs", "camera_info", "timer")
        }
        self._instruction_sub = None

    @property
    def is_configured(self) -> bool:
        """True between a successful configure and cleanup/shutdown."""
        return self._configured

    @property
    def current_instruction(self) -> str:
        return self._instruction

    # ----------------------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model. FAILURE (node stays unconfigured) when it cannot be loaded."""
        p = self._param
        model = p("model")
        self.get_logger().info(f"loading model '{model}' on device '{p('device')}'")
        try:
            values = {name: p(name) for name in MODEL_PARAMETERS}
            predictor = self._model.call(load_predictor, values, gripper_from(p))
        except Exception as error:  # any load failure must leave the node alive
            self._report(f"cannot load model '{model}': {error}")
            return TransitionCallbackReturn.FAILURE
        self.predictor = predictor
        self.gripper = predictor.gripper  # the markers draw the gripper planned for
        self.sync = NewestPairSync(slop_ns=int(p("slop_s") * 1e9))
        self._outputs = {
            "prediction": self.create_lifecycle_publisher(GraspPrediction, "~/prediction", 10),
            "contacts": self.create_lifecycle_publisher(PointCloud2, "~/contacts", 10),
            "grasps": self.create_lifecycle_publisher(PoseArray, "~/grasps", 10),
            "markers": self.create_lifecycle_publisher(MarkerArray, "~/markers", 10),
        }
        self._own_services = [
            self.create_service(
                PredictGrasps,
                "~/predict",
                self._on_predict,
                callback_group=self._groups["predict"],
            ),
            self.create_service(
                DescribeScene,
                "~/describe",
                self._on_describe,
                callback_group=self._groups["describe"],
            ),
        ]
        self._instruction_sub = self.create_subscription(
            String,
            "instruction",
            self._on_instruction,
            INSTRUCTION_QOS,
            callback_group=self._groups["inputs"],
        )
        self._own_timers = [
            self.create_timer(1.0, self._on_timer, callback_group=self._groups["timer"])
        ]
        self._set_instruction(p("instruction"), source="parameter", allow_empty=True)
        self._configured = True
        self.get_logger().info(loaded_summary(model, predictor))
        for warning in predictor.missing_heads:  # a head missing beside the weights
            self.get_logger().warning(warning)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the sensors and start the prediction worker."""
        sensor, group = sensor_qos(self._param("sensor_reliability")), self._groups["inputs"]
        self._sensor_subs = [
            self.create_subscription(Image, "image", self._on_image, sensor, callback_group=group),
            self.create_subscription(
                PointCloud2, "points", self._on_cloud, sensor, callback_group=group
            ),
            self.create_subscription(
                CameraInfo,
                "camera_info",
                self._on_camera_info,
                sensor,
                callback_group=self._groups["camera_info"],
            ),
        ]
        self.worker.start()
        self._active = True
        self.get_logger().info("active: predicting on image/points pairs")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop predicting: unsubscribe from the sensors and join the worker."""
        self._active = False
        self.worker.stop()
        for subscription in self._sensor_subs:
            self.destroy_subscription(subscription)
        self._sensor_subs = []
        self.sync.clear()
        self.get_logger().info("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model and everything configure made."""
        self._release()
        self.get_logger().info("unconfigured: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self.worker.stop()
        self._release()
        self._model.shutdown()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self.worker.stop()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        for service in self._own_services:
            self.destroy_service(service)
        for timer in self._own_timers:
            self.destroy_timer(timer)
        if self._instruction_sub is not None:
            self.destroy_subscription(self._instruction_sub)
        self._outputs, self._own_services, self._own_timers = {}, [], []
        self._instruction_sub = None
        self._latest_image = self._latest_cloud = None
        self.camera_infos.clear()
        self._order.clear()
        if self._model.closed:
            self.predictor = self._describer = None
        else:
            self._model.call(self._free_model)
        self._configured = False

    def _free_model(self) -> None:
        """Drop the model and return its memory (run on the model thread)."""
        self.predictor = self._describer = None
        release_memory()

    # ------------------------------------------------------------------------------- inputs
    @guarded("image callback")
    def _on_image(self, msg: Image) -> None:
        if self._stamp_ok(msg.header, "image"):
            self._latest_image = msg
            self._after_add(self.sync.add_image(stamp_ns(msg.header), msg))

    @guarded("points callback")
    def _on_cloud(self, msg: PointCloud2) -> None:
        if self._stamp_ok(msg.header, "points"):
            self._latest_cloud = msg
            self._after_add(self.sync.add_cloud(stamp_ns(msg.header), msg))

    def _stamp_ok(self, header: Header, topic: str) -> bool:
        """A stamp's nanoseconds must be below one second; such a message is rejected."""
        if 0 <= header.stamp.nanosec < 1_000_000_000:
            return True
        self._report(
            f"input rejected: {topic} stamp nanosec {header.stamp.nanosec} is not below "
            "1,000,000,000"
        )
        return False

    def _after_add(self, paired: bool) -> None:
        if not paired and self.sync.last_gap_ns:
            self.health.warn(
                f"image and cloud stamps differ by {abs(self.sync.last_gap_ns) / 1e9:.3f} s, "
                f"more than slop_s={self._param('slop_s')}: not paired"
            )

    @guarded("camera_info callback")
    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_infos.add(msg)

    @guarded("instruction callback")
    def _on_instruction(self, msg: String) -> None:
        self._set_instruction(msg.data, source="topic")

    def _set_instruction(self, text: str, source: str, allow_empty: bool = False) -> bool:
        """Validate and apply an instruction; a bad one is reported and the old one kept."""
        error = self._instruction_error(text)
        if error and not (allow_empty and not text):
            self._report(f"instruction from {source} rejected: {error}")
            return False
        if text:
            self._instruction = text.strip()
            self.get_logger().info(f"instruction ({source}): '{self._instruction}'")
        return True

    def _instruction_error(self, text: str) -> str:
        """Why the predictor refuses ``text`` ("" when it takes it): the rules of every model
        before one is loaded, then the loaded model's (its vocabulary too)."""
        try:
            if self.predictor is None:
                check_instruction_text(text)
            else:
                self.predictor.check_instruction(text)
        except ValueError as error:
            return str(error)
        return ""

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        for param in params:
            if param.name not in BY_NAME:
                continue
            if self._configured and param.name not in DYNAMIC:
                return SetParametersResult(
                    successful=False,
                    reason=f"'{param.name}' is read at configure: deactivate and clean up the "
                    "node, set it, then configure again",
                )
            if param.name == "instruction" and param.value:
                error = self._instruction_error(param.value)
                if error:
                    return SetParametersResult(successful=False, reason=error)
                self._instruction = param.value.strip()
            if param.name == "slop_s":
                self.sync.slop_ns = int(param.value * 1e9)
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------------ predict
    def _predict_pair(self, pair: Any) -> None:
        """Predict on one image/cloud pair from the topics and publish, unless it is stale."""
        now_ns = self.get_clock().now().nanoseconds
        # a reference may lie at most the rewind window ahead of the clock: one bad stamp then
        # holds back at most that window's pairs
        window_ns = int(self._param("max_stamp_rewind_s") * 1e9)
        self._order.max_rewind_ns = self._order.max_ahead_ns = window_ns
        go, note = self._order.check(pair.cloud_stamp_ns, now_ns)
        if not go:
            self._report(note)
            return
        if note:
            self.get_logger().warning(note, throttle_duration_sec=10.0)
            self.health.warn(note)
            self._publish_diagnostics()
        required = self.predictor.needs_intrinsics
        info = self.camera_infos.for_image(pair.image, CAMERA_INFO_WAIT_S, required)
        message, _ = self._predict(pair.image, pair.cloud, info, None, 0)
        if message is not None:
            self._order.predicted(pair.cloud_stamp_ns, now_ns)
            if self._active:
                self._publish(message)

    def _predict(
        self,
        image: Image,
        cloud: PointCloud2,
        info: CameraInfo | None,
        instruction: str | None,
        max_grasps: int,
        timeout: float | None = None,
    ) -> tuple[GraspPrediction | None, str]:
        """Run the model on one pair: ``(message, "")``, or ``(None, why)`` (reported) on bad
        input, or when the model stays busy for ``timeout`` seconds (None: no bound)."""
        instruction = instruction or self._instruction
        if not instruction:
            why = "waiting for an instruction on the 'instruction' topic"
            self.health.warn(why)
            return None, why
        try:
            rgb = image_to_rgb(image)
            cloud_xyz = cloud_to_xyz(cloud)
            intrinsics = None
            if info is not None and (info.width, info.height) == (image.width, image.height):
                intrinsics = camera_info_to_intrinsics(info)
            elif info is not None and (info.width or info.height):
                raise ConversionError(
                    f"camera_info is for a {info.width}x{info.height} image, the image is "
                    f"{image.width}x{image.height}"
                )
            limit = int(max_grasps) or self._param("max_grasps")
            min_score = self._param("score_threshold")
            inputs = (rgb, cloud_xyz.points, instruction, intrinsics, limit, min_score)
            prediction, elapsed_ms = self._model.call(
                self._run_predictor, *inputs, timeout=timeout
            )
        except Busy as error:
            why = f"busy: {error}"
        except (ConversionError, ValueError) as error:
            why = f"input rejected: {error}"
        else:
            if prediction is None:
                return None, "no model loaded"
            self.health.prediction(elapsed_ms)
            message = prediction_msg(
                prediction, cloud.header, instruction, self._param("model"), elapsed_ms
            )
            return message, ""
        self._report(why)
        return None, why

    def _run_predictor(
        self,
        rgb: np.ndarray,
        points: np.ndarray,
        instruction: str,
        intrinsics: Any,
        limit: int,
        min_score: float,
    ) -> tuple[Any, float]:
        """The prediction and its time in ms (on the model thread); None when no model."""
        if self.predictor is None:
            return None, 0.0
        started = time.perf_counter()
        prediction = self.predictor.predict(
            rgb, points, instruction, intrinsics=intrinsics, max_grasps=limit, min_score=min_score
        )
        return prediction, 1e3 * (time.perf_counter() - started)

    def _publish(self, message: GraspPrediction) -> None:
        self._outputs["prediction"].publish(message)
        self._outputs["contacts"].publish(message.contacts)
        self._outputs["grasps"].publish(pose_array_msg(message))
        self._outputs["markers"].publish(markers_msg(message, self.gripper))

    # ---------------------------------------------------------------------------- reporting
    def _report(self, text: str) -> None:
        """Log an input or model problem and show it on diagnostics at once."""
        self.get_logger().error(text)
        self.health.error(text)
        self._publish_diagnostics()

    def _report_failure(self, what: str, error: BaseException) -> str:
        """Report an unexpected failure with its traceback in the log; returns the message."""
        text = f"{what}: {type(error).__name__}: {error}"
        self.get_logger().error(f"{text}\n{traceback.format_exc()}")
        self.health.error(text)
        self._publish_diagnostics()
        return text

    @guarded("watchdog")
    def _on_timer(self) -> None:
        """Once a second: the watchdog, then diagnostics."""
        self._watch_worker()
        self._publish_diagnostics()

    def _watch_worker(self) -> None:
        """Restart a prediction worker that died; report one stuck in a prediction."""
        if not self._active or self.worker.stopped:
            return
        if not self.worker.alive:
            self.worker.restart()  # before the report: whoever reads it finds the worker running
            self._report(f"prediction worker died: restarted (restart {self.worker.restarts})")
            return
        busy_since = self._model.busy_since
        limit = self._param("watchdog_timeout_s")
        if busy_since is not None and time.monotonic() - busy_since > limit:
            self._report(
                f"prediction worker stuck: one prediction has run for "
                f"{time.monotonic() - busy_since:.0f} s (watchdog_timeout_s={limit:g})"
            )

    def _publish_diagnostics(self) -> None:
        if not self.context.ok():  # shutting down: nobody is listening
            return
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [
            self.health.status(self.sync.pairs_dropped, worker_restarts=self.worker.restarts)
        ]
        self._diagnostics_pub.publish(array)

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value


def spin(executor: MultiThreadedExecutor, node: GraspSemanticsNode) -> None:
    """``executor.spin()`` until shutdown, resumed when a lifecycle transition destroyed an
    entity while the executor was adding it to its wait set: rclpy then raises InvalidHandle
    out of ``spin`` (it ended the process once in 66 lifecycle cycles here)."""
    while rclpy.ok(context=node.context):
        try:
            executor.spin()
        except InvalidHandle as error:
            node.get_logger().debug(f"executor resumed after a destroyed entity: {error}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``grasp_semantics_node`` (``ros2 run grasp_semantics ...``)."""
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = GraspSemanticsNode()
    executor = MultiThreadedExecutor(num_threads=len(node._groups))
    executor.add_node(node)
    try:
        if node.get_parameter("autostart").value:
            node.trigger_configure()
            if node.is_configured:
                node.trigger_activate()
        spin(executor, node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # Ctrl-C shuts the context down under a spinning executor, which can then fail to
        # build its wait set (RCLError) instead of raising ExternalShutdownException
        if rclpy.ok():
            raise
    finally:
        node.on_shutdown(None)
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
