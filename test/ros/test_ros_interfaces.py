"""The generated interfaces import and round-trip through rclpy publish/subscribe."""

from __future__ import annotations

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import Point, Pose, Quaternion
from ros_helpers import Inbox, spinning, wait_for_subscribers
from std_msgs.msg import Header

from grasp_semantics.msg import Grasp, GraspPrediction
from grasp_semantics.ros.conversions import cloud_fields, xyz_to_cloud
from grasp_semantics.srv import DescribeScene, PredictGrasps


def test_grasp_prediction_round_trips_through_pub_sub(ros_context) -> None:
    header = Header(frame_id="camera_color_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 1700000000, 123456789
    points = np.arange(12, dtype=np.float32).reshape(4, 3)
    contact = np.array([0.0, 0.25, 0.5, 1.0], dtype=np.float32)
    sent = GraspPrediction(
        header=header,
        instruction="pour from the red mug",
        contacts=xyz_to_cloud(points, header, extra={"contact": contact}),
        grasps=[
            Grasp(
                pose=Pose(
                    position=Point(x=0.1, y=-0.2, z=0.7),
                    orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
                ),
                width=0.042,
                score=0.9,
                contact_score=0.8,
                contact_point=Point(x=0.08, y=-0.2, z=0.7),
            )
        ],
        model="tiny",
        inference_ms=12.5,
    )
    publisher_node = rclpy.create_node("interfaces_publisher", context=ros_context)
    subscriber_node = rclpy.create_node("interfaces_subscriber", context=ros_context)
    inbox = Inbox()
    subscriber_node.create_subscription(GraspPrediction, "prediction", inbox, 10)
    publisher = publisher_node.create_publisher(GraspPrediction, "prediction", 10)
    try:
        with spinning(publisher_node, subscriber_node):
            wait_for_subscribers(publisher)
            publisher.publish(sent)
            (received,) = inbox.wait_for(1)
    finally:
        publisher_node.destroy_node()
        subscriber_node.destroy_node()
    assert received.header == sent.header
    assert received.instruction == sent.instruction and received.model == "tiny"
    (grasp,) = received.grasps
    assert grasp.pose == sent.grasps[0].pose
    assert grasp.contact_point == sent.grasps[0].contact_point
    assert (grasp.width, grasp.score, grasp.contact_score) == pytest.approx((0.042, 0.9, 0.8))
    assert received.inference_ms == pytest.approx(12.5)
    fields = cloud_fields(received.contacts, ("x", "y", "z", "contact"))
    np.testing.assert_array_equal(fields["contact"], contact)
    np.testing.assert_array_equal(np.stack([fields[a] for a in "xyz"], axis=1), points)


def test_service_types_have_the_documented_fields() -> None:
    request = PredictGrasps.Request()
    assert {"image", "cloud", "camera_info", "instruction", "max_grasps"} <= set(
        request.get_fields_and_field_types()
    )
    response = PredictGrasps.Response()
    assert isinstance(response.prediction, GraspPrediction)
    assert set(DescribeScene.Request.get_fields_and_field_types()) == {"image", "task", "prompt"}
    assert set(DescribeScene.Response.get_fields_and_field_types()) == {
        "success",
        "message",
        "answer",
        "confidence",
    }
