"""The node over real rclpy topics: inputs in, GraspPrediction out, bad input survived."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from ros_helpers import Inbox, spinning, wait_for_subscribers
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header, String

from grasp_semantics.msg import GraspPrediction
from grasp_semantics.ros.conversions import cloud_fields, cloud_to_xyz, rgb_to_image, xyz_to_cloud
from grasp_semantics.ros.node import INSTRUCTION_QOS, GraspSemanticsNode

FRAME = "camera_color_optical_frame"


def scene_inputs(stamp_sec: int, nanosec: int = 0) -> tuple[Image, PointCloud2, CameraInfo]:
    """A 64x80 image and an organised cloud of a tilted plane in front of the camera."""
    header = Header(frame_id=FRAME)
    header.stamp.sec, header.stamp.nanosec = stamp_sec, nanosec
    rng = np.random.default_rng(stamp_sec)
    rgb = rng.integers(0, 256, size=(64, 80, 3), dtype=np.uint8)
    v, u = np.mgrid[0:64, 0:80]
    z = 0.6 + 0.002 * v
    points = np.stack([(u - 40) * z / 100, (v - 32) * z / 100, z], axis=-1).reshape(-1, 3)
    info = CameraInfo(header=header, width=80, height=64)
    info.k = [100.0, 0.0, 40.0, 0.0, 100.0, 32.0, 0.0, 0.0, 1.0]
    return rgb_to_image(rgb, header), xyz_to_cloud(points, header), info


class Harness:
    """The node under test plus a peer node that publishes inputs and collects outputs."""

    def __init__(self, context: rclpy.Context, **parameters) -> None:
        overrides = {"model": "tiny", "num_points": 512, "max_rate_hz": 0.0, **parameters}
        self.node = GraspSemanticsNode(
            context=context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )
        self.peer = rclpy.create_node("test_peer", context=context)
        self.image = self.peer.create_publisher(Image, "image", QoSProfile(depth=10))
        self.points = self.peer.create_publisher(PointCloud2, "points", QoSProfile(depth=10))
        self.info = self.peer.create_publisher(CameraInfo, "camera_info", QoSProfile(depth=10))
        self.instruction = self.peer.create_publisher(String, "instruction", INSTRUCTION_QOS)
        self.predictions = Inbox()
        self.diagnostics = Inbox()
        self.peer.create_subscription(
            GraspPrediction, "/grasp_semantics/prediction", self.predictions, 10
        )
        self.peer.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics, 50)

    def send(self, stamp_sec: int, nanosec: int = 0) -> PointCloud2:
        image, cloud, info = scene_inputs(stamp_sec, nanosec)
        self.info.publish(info)
        self.image.publish(image)
        self.points.publish(cloud)
        return cloud

    def close(self) -> None:
        self.node.on_shutdown(None)
        self.node.destroy_node()
        self.peer.destroy_node()


@pytest.fixture
def harness(ros_context) -> Iterator[Harness]:
    harness = Harness(ros_context)
    with spinning(harness.node, harness.peer):
        harness.node.trigger_configure()
        harness.node.trigger_activate()
        for publisher in (harness.image, harness.points, harness.instruction):
            wait_for_subscribers(publisher)
        yield harness
    harness.close()


def test_prediction_carries_the_cloud_header_and_the_points_it_saw(harness: Harness) -> None:
    harness.instruction.publish(String(data="hand me the knife"))
    cloud = harness.send(stamp_sec=100, nanosec=250)
    (prediction,) = harness.predictions.wait_for(1)
    assert prediction.header.frame_id == cloud.header.frame_id == FRAME
    assert prediction.header.stamp == cloud.header.stamp
    assert prediction.instruction == "hand me the knife"
    assert prediction.model == "tiny" and prediction.inference_ms > 0
    contacts = cloud_fields(prediction.contacts, ("x", "y", "z", "contact"))
    assert contacts.shape == (512,)
    assert np.all((contacts["contact"] >= 0) & (contacts["contact"] <= 1))
    seen = cloud_to_xyz(prediction.contacts).points
    inputs = {tuple(p) for p in cloud_to_xyz(cloud).points}
    assert all(tuple(p) in inputs for p in seen)  # contacts are input points, unchanged
    assert len(prediction.grasps) <= 10
    scores = [g.score for g in prediction.grasps]
    assert scores == sorted(scores, reverse=True)


def error_status(harness: Harness, text: str) -> DiagnosticStatus:
    """Wait for an ERROR diagnostic of the node whose message contains ``text``."""
    array = harness.diagnostics.wait_until(
        lambda a: any(s.level == DiagnosticStatus.ERROR and text in s.message for s in a.status)
    )
    return next(s for s in array.status if text in s.message)


def test_bad_inputs_are_reported_and_the_next_good_pair_is_predicted(harness: Harness) -> None:
    harness.instruction.publish(String(data="pour from the red mug"))
    image, cloud, _ = scene_inputs(200)
    image.encoding = "yuv422"
    harness.image.publish(image)
    harness.points.publish(cloud)
    status = error_status(harness, "unsupported image encoding 'yuv422'")
    assert dict((v.key, v.value) for v in status.values)["rejected_inputs"] == "1"
    good = harness.send(stamp_sec=201)
    (prediction,) = harness.predictions.wait_for(1)
    assert prediction.header.stamp == good.header.stamp
