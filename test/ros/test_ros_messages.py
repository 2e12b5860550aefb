"""Output message building: poses, quaternions, markers, the contacts cloud."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from grasp_semantics.grasping.gripper import grasp_poses
from grasp_semantics.models.config import GripperConfig
from grasp_semantics.ros.conversions import cloud_fields, cloud_to_xyz
from grasp_semantics.ros.messages import (
    markers_msg,
    pose_array_msg,
    pose_matrix,
    pose_msg,
    prediction_msg,
    quaternion_to_rotation,
    rotation_to_quaternion,
)

vectors = st.lists(st.floats(-1, 1, allow_nan=False), min_size=3, max_size=3).filter(
    lambda v: np.linalg.norm(v) > 0.1
)


@settings(max_examples=200, deadline=None)
@given(vectors, vectors)
def test_quaternion_reproduces_any_grasp_rotation(approach, closing) -> None:
    approach, closing = np.array(approach), np.array(closing)
    cos = abs(approach @ closing) / np.linalg.norm(approach) / np.linalg.norm(closing)
    if cos > 0.99:
        return
    pose = grasp_poses(np.zeros(3), approach, closing, np.array(0.04))
    q = rotation_to_quaternion(pose[:3, :3])
    assert np.isclose(np.linalg.norm(q), 1.0)
    np.testing.assert_allclose(quaternion_to_rotation(q), pose[:3, :3], atol=1e-9)
    np.testing.assert_allclose(pose_matrix(pose_msg(pose)), pose, atol=1e-9)


def fake_prediction(n_grasps: int = 3) -> SimpleNamespace:
    """A core prediction with known values (the shape contract of predictor.Prediction)."""
    rng = np.random.default_rng(1)
    contacts = rng.normal(size=(n_grasps, 3))
    poses = grasp_poses(
        contacts,
        np.tile([0.0, 0.0, 1.0], (n_grasps, 1)),
        np.tile([1.0, 0, 0], (n_grasps, 1)),
        np.full(n_grasps, 0.05),
    )
    return SimpleNamespace(
        points=rng.normal(size=(50, 3)).astype(np.float32),
        contact=rng.uniform(size=50).astype(np.float32),
        poses=poses,
        widths=np.full(n_grasps, 0.05),
        scores=np.linspace(0.9, 0.5, n_grasps),
        contact_scores=np.linspace(0.8, 0.4, n_grasps),
        contact_points=contacts,
    )


def test_prediction_message_carries_header_points_and_ranked_grasps() -> None:
    header = Header(frame_id="camera_color_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    prediction = fake_prediction()
    msg = prediction_msg(prediction, header, "hand me the knife", "tiny", 12.5)
    assert msg.header.frame_id == "camera_color_optical_frame"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)
    assert msg.contacts.header.frame_id == msg.header.frame_id
    np.testing.assert_array_equal(cloud_to_xyz(msg.contacts).points, prediction.points)
    np.testing.assert_array_equal(
        cloud_fields(msg.contacts, ("contact",))["contact"], prediction.contact
    )
    assert [g.score for g in msg.grasps] == pytest.approx(prediction.scores)
    first = msg.grasps[0]
    assert (first.pose.position.x, first.pose.position.y, first.pose.position.z) == pytest.approx(
        tuple(prediction.poses[0, :3, 3])
    )
    assert first.contact_point.x == pytest.approx(prediction.contact_points[0, 0])
    assert msg.instruction == "hand me the knife" and msg.model == "tiny"
    poses = pose_array_msg(msg)
    assert poses.header == msg.header and len(poses.poses) == 3


def test_markers_one_gripper_per_grasp_plus_instruction_text() -> None:
    msg = prediction_msg(fake_prediction(2), Header(frame_id="cam"), "pour", "tiny", 1.0)
    markers = markers_msg(msg, GripperConfig()).markers
    assert markers[0].action == Marker.DELETEALL
    grippers = [m for m in markers if m.type == Marker.LINE_LIST]
    assert len(grippers) == 2 and all(len(m.points) == 12 for m in grippers)
    assert grippers[0].color.r < grippers[1].color.r  # better score, less red
    text = [m for m in markers if m.type == Marker.TEXT_VIEW_FACING]
    assert len(text) == 1 and text[0].text == "pour"
    assert all(m.header.frame_id == "cam" for m in markers)
