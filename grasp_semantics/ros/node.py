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
never builds a queue; bad input is logged, reported on diagnostics and skipped.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from grasp_semantics.gripper import GripperConfig
from grasp_semantics.msg import GraspPrediction
from grasp_semantics.ros.conversions import (
    ConversionError,
    camera_info_to_intrinsics,
    cloud_to_xyz,
    image_to_rgb,
)
from grasp_semantics.ros.diagnostics import Health
from grasp_semantics.ros.messages import markers_msg, pose_array_msg, prediction_msg
from grasp_semantics.ros.parameters import BY_NAME, DYNAMIC, PARAMETERS
from grasp_semantics.ros.sync import NewestPairSync
from grasp_semantics.srv import DescribeScene, PredictGrasps

CAMERA_INFO_WAIT_S = 2.0  # how long a pair waits for the first camera_info before failing
INSTRUCTION_QOS = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def stamp_ns(header: Header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def load_predictor(
    model: str, device: str, dtype: str, num_points: int, compile: bool, scorer: bool,
    max_cloud_points: int,
) -> Any:  # fmt: skip
    """The core predictor for the node's parameters (imported here: torch loads slowly).

    With ``compile`` the network is compiled here, by a warm-up on synthetic inputs, rather
    than on the first camera frame.
    """
    from grasp_semantics.predictor import GraspPredictor

    predictor = GraspPredictor.from_pretrained(
        model, device=device, dtype=None if dtype == "auto" else dtype, compile=compile,
        scorer=scorer, max_cloud_points=max_cloud_points or None,  # 0: every point
    )  # fmt: skip
    predictor.num_points = num_points
    if compile:
        predictor.warm_up()
    return predictor


def select_grasps(prediction: Any, keep: np.ndarray) -> Any:
    """The prediction with only the grasps where ``keep`` is true (order kept)."""
    return dataclasses.replace(
        prediction,
        poses=prediction.poses[keep],
        widths=prediction.widths[keep],
        scores=prediction.scores[keep],
        contact_scores=prediction.contact_scores[keep],
        contact_points=prediction.contact_points[keep],
    )


class GraspSemanticsNode(LifecycleNode):
    """Lifecycle node wrapping :class:`grasp_semantics.predictor.GraspPredictor`."""

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
        self._latest_info: CameraInfo | None = None
        self._info_received = threading.Event()
        self._last_cloud_ns = -1
        self._predict_lock = threading.Lock()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._outputs: dict[str, Any] = {}
        self._sensor_subs: list[Any] = []
        self._own_services: list[Any] = []
        self._own_timers: list[Any] = []
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._service_group = MutuallyExclusiveCallbackGroup()
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
        fusion_mode = p("fusion_mode")
        self.get_logger().info(f"loading model '{model}' on device '{p('device')}'")
        try:
            predictor = load_predictor(
                model, p("device"), p("dtype"), p("num_points"), p("compile"),
                p("grasp_scorer"), p("max_cloud_points"),
            )  # fmt: skip
            model_fusion = predictor.model.cfg.fusion.mode
            if fusion_mode and fusion_mode != model_fusion:
                raise ValueError(
                    f"fusion_mode '{fusion_mode}' does not match the checkpoint's '{model_fusion}'"
                )
        except Exception as error:  # any load failure must leave the node alive
            self._report(f"cannot load model '{model}': {error}")
            return TransitionCallbackReturn.FAILURE
        self.predictor = predictor
        self.gripper = GripperConfig(
            max_width=p("gripper.max_width"), finger_depth=p("gripper.finger_depth")
        )
        self.sync = NewestPairSync(slop_ns=int(p("slop_s") * 1e9))
        self._outputs = {
            "prediction": self.create_lifecycle_publisher(GraspPrediction, "~/prediction", 10),
            "contacts": self.create_lifecycle_publisher(PointCloud2, "~/contacts", 10),
            "grasps": self.create_lifecycle_publisher(PoseArray, "~/grasps", 10),
            "markers": self.create_lifecycle_publisher(MarkerArray, "~/markers", 10),
        }
        self._own_services = [
            self.create_service(
                PredictGrasps, "~/predict", self._on_predict, callback_group=self._service_group
            ),
            self.create_service(
                DescribeScene, "~/describe", self._on_describe, callback_group=self._service_group
            ),
        ]
        self._instruction_sub = self.create_subscription(
            String, "instruction", self._on_instruction, INSTRUCTION_QOS
        )
        self._own_timers = [self.create_timer(1.0, self._publish_diagnostics)]
        self._set_instruction(p("instruction"), source="parameter", allow_empty=True)
        self._configured = True
        cfg = predictor.model.cfg
        self.get_logger().info(
            f"configured: model '{model}' ({cfg.name}, backbone {cfg.encoder.backbone.name}, "
            f"fusion {cfg.fusion.mode}) on {predictor.device}; planned grasps ranked by "
            + ("its grasp scorer" if predictor.scorer is not None else "the planner's quality")
        )
        for warning in predictor.missing_heads:  # a head missing beside the weights
            self.get_logger().warning(warning)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the sensors and start the prediction worker."""
        sensor = qos_profile_sensor_data
        self._sensor_subs = [
            self.create_subscription(Image, "image", self._on_image, sensor),
            self.create_subscription(PointCloud2, "points", self._on_cloud, sensor),
            self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, sensor),
        ]
        self._stop.clear()
        self._worker = threading.Thread(target=self._run_worker, name="predict", daemon=True)
        self._worker.start()
        self._active = True
        self.get_logger().info("active: predicting on image/points pairs")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop predicting: unsubscribe from the sensors and join the worker."""
        self._active = False
        self._stop_worker()
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
        self._stop_worker()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._stop_worker()
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
        self._latest_image = self._latest_cloud = self._latest_info = None
        self._info_received.clear()
        self._last_cloud_ns = -1
        with self._predict_lock:
            self.predictor = self._describer = None
        self._configured = False
        gc.collect()
        torch = sys.modules.get("torch")  # not imported just to release: that takes seconds
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _stop_worker(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    # ------------------------------------------------------------------------------- inputs
    def _on_image(self, msg: Image) -> None:
        self._latest_image = msg
        self._after_add(self.sync.add_image(stamp_ns(msg.header), msg))

    def _on_cloud(self, msg: PointCloud2) -> None:
        self._latest_cloud = msg
        self._after_add(self.sync.add_cloud(stamp_ns(msg.header), msg))

    def _after_add(self, paired: bool) -> None:
        if not paired and self.sync.last_gap_ns:
            self.health.warn(
                f"image and cloud stamps differ by {abs(self.sync.last_gap_ns) / 1e9:.3f} s, "
                f"more than slop_s={self._param('slop_s')}: not paired"
            )

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._latest_info = msg
        self._info_received.set()

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
        limit = self._param("max_instruction_chars")
        if not text.strip():
            return "empty instruction"
        if len(text) > limit:
            return f"{len(text)} characters, more than max_instruction_chars={limit}"
        if not text.isprintable():
            return "contains control characters"
        if self.predictor is not None:
            try:
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
    def _run_worker(self) -> None:
        next_allowed = 0.0
        while not self._stop.is_set():
            wait = next_allowed - time.monotonic()
            if wait > 0:  # rate cap: newer pairs replace the pending one meanwhile
                self._stop.wait(wait)
                continue
            pair = self.sync.take(timeout=0.1)
            if pair is None:
                continue
            if pair.cloud_stamp_ns < self._last_cloud_ns:
                self._report(
                    f"cloud stamp {pair.cloud_stamp_ns / 1e9:.3f} s is older than the last "
                    f"predicted one ({self._last_cloud_ns / 1e9:.3f} s): stale input skipped"
                )
                continue
            if self._latest_info is None and self.predictor.needs_intrinsics:
                # the first pair may come before the first camera_info: wait for it briefly
                self._info_received.wait(CAMERA_INFO_WAIT_S)
            rate = self._param("max_rate_hz")
            next_allowed = time.monotonic() + (1.0 / rate if rate > 0 else 0.0)
            message = self._predict(pair.image, pair.cloud, self._latest_info, None, 0)
            if message is not None:
                self._last_cloud_ns = pair.cloud_stamp_ns
                if self._active:
                    self._publish(message)

    def _predict(
        self,
        image: Image,
        cloud: PointCloud2,
        info: CameraInfo | None,
        instruction: str | None,
        max_grasps: int,
    ) -> GraspPrediction | None:
        """Run the model on one pair; report and return None on bad input."""
        instruction = instruction or self._instruction
        if not instruction:
            self.health.warn("waiting for an instruction on the 'instruction' topic")
            return None
        try:
            rgb = image_to_rgb(image)
            cloud_xyz = cloud_to_xyz(cloud)
            intrinsics = None
            if info is not None and (info.width, info.height) == (image.width, image.height):
                intrinsics = camera_info_to_intrinsics(info)
            limit = int(max_grasps) or self._param("max_grasps")
            with self._predict_lock:
                if self.predictor is None:
                    return None
                started = time.perf_counter()
                prediction = self.predictor.predict(
                    rgb, cloud_xyz.points, instruction, intrinsics=intrinsics, max_grasps=limit
                )
                elapsed_ms = 1e3 * (time.perf_counter() - started)
        except (ConversionError, ValueError) as error:
            self._report(f"input rejected: {error}")
            return None
        keep = prediction.scores >= self._param("score_threshold")
        prediction = select_grasps(prediction, keep)
        self.health.prediction(elapsed_ms)
        return prediction_msg(
            prediction, cloud.header, instruction, self._param("model"), elapsed_ms
        )

    def _publish(self, message: GraspPrediction) -> None:
        self._outputs["prediction"].publish(message)
        self._outputs["contacts"].publish(message.contacts)
        self._outputs["grasps"].publish(pose_array_msg(message))
        self._outputs["markers"].publish(markers_msg(message, self.gripper))

    def _on_predict(
        self, request: PredictGrasps.Request, response: PredictGrasps.Response
    ) -> PredictGrasps.Response:
        """On-demand prediction on the request's inputs, or the latest received ones."""
        if not self._active:
            response.success, response.message = False, "node is not active"
            return response
        image = request.image if len(request.image.data) else self._latest_image
        cloud = request.cloud if len(request.cloud.data) else self._latest_cloud
        info = request.camera_info if any(request.camera_info.k) else self._latest_info
        if image is None or cloud is None:
            missing = "image" if image is None else "cloud"
            response.success = False
            response.message = f"no {missing} in the request and none received yet"
            return response
        if request.instruction:
            error = self._instruction_error(request.instruction)
            if error:
                response.success, response.message = False, f"instruction rejected: {error}"
                return response
        before = self.health.last_error
        message = self._predict(image, cloud, info, request.instruction, request.max_grasps)
        if message is None:
            response.success = False
            response.message = (
                self.health.last_error if self.health.last_error != before else "no instruction"
            )
            return response
        response.success, response.prediction = True, message
        return response

    def _on_describe(
        self, request: DescribeScene.Request, response: DescribeScene.Response
    ) -> DescribeScene.Response:
        """Caption / OCR / VQA on the request's image, or the latest one received, through the
        loaded backbone (``grasp_semantics.describe``); a bad request gets success=false."""
        from grasp_semantics.describe import attach_describer, check_request, describe

        response.success = False
        image = request.image if len(request.image.data) else self._latest_image
        try:
            check_request(request.task, request.prompt, 1)
            if not self._active:
                raise ValueError("node is not active")
            if image is None:
                raise ValueError("no image in the request and none received yet")
            rgb = image_to_rgb(image)
            with self._predict_lock:
                if self.predictor is None:
                    raise ValueError("no model loaded")
                if self._describer is None:
                    self._describer = attach_describer(self.predictor.model, self._param("model"))
                result = describe(self._describer, rgb, request.task, request.prompt)
        except (ConversionError, ValueError, FileNotFoundError, RuntimeError) as error:
            response.message = f"describe rejected: {error}"
            self.get_logger().warning(response.message)
            return response
        response.success, response.answer = True, result.answer
        response.confidence = result.confidence
        return response

    # ---------------------------------------------------------------------------- reporting
    def _report(self, text: str) -> None:
        """Log an input or model problem and show it on diagnostics at once."""
        self.get_logger().error(text)
        self.health.error(text)
        self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [self.health.status(self.sync.pairs_dropped)]
        self._diagnostics_pub.publish(array)

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``grasp_semantics_node`` (``ros2 run grasp_semantics ...``)."""
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = GraspSemanticsNode()
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        if node.get_parameter("autostart").value:
            node.trigger_configure()
            if node.is_configured:
                node.trigger_activate()
        executor.spin()
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
