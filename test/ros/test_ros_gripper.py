"""The node's gripper parameters reach the grasps it publishes, and a gripper the model's
grasp scorer cannot rank for fails configure with the reason."""

from __future__ import annotations

import numpy as np
import pytest
import rclpy
from lifecycle_msgs.msg import State
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from ros_helpers import Inbox, spinning, wait_for_subscribers
from scenes import WIDE_SCENE
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from grasp_semantics.data.scene import generate_scene
from grasp_semantics.models.config import OPENING_CLEARANCE
from grasp_semantics.msg import GraspPrediction
from grasp_semantics.ros.conversions import rgb_to_image, xyz_to_cloud
from grasp_semantics.ros.messages import pose_matrix
from grasp_semantics.ros.node import GraspSemanticsNode

FRAME = "camera_color_optical_frame"


def scene_messages(stamp_sec: int) -> tuple[Image, PointCloud2, CameraInfo, str]:
    """The wide scene as a camera would send it, stamped ``stamp_sec``."""
    scene = generate_scene(WIDE_SCENE[1], WIDE_SCENE[0])
    header = Header(frame_id=FRAME)
    header.stamp.sec = stamp_sec
    height, width = scene.rgb.shape[:2]
    info = CameraInfo(header=header, width=width, height=height)
    info.k = [float(v) for v in np.asarray(scene.intrinsics, dtype=np.float64).ravel()]
    image, cloud = rgb_to_image(scene.rgb, header), xyz_to_cloud(scene.points, header)
    return image, cloud, info, scene.instruction


def publish_and_wait(peer, publishers, inbox: Inbox, stamp_sec: int) -> GraspPrediction:
    image, cloud, info, _ = scene_messages(stamp_sec)
    publishers["camera_info"].publish(info)
    publishers["image"].publish(image)
    publishers["points"].publish(cloud)
    return inbox.wait_until(lambda m: m.header.stamp.sec == stamp_sec, timeout=120.0)


@pytest.mark.slow
def test_setting_the_gripper_width_changes_the_published_grasps(ros_context) -> None:
    instruction = scene_messages(0)[3]
    node = GraspSemanticsNode(
        context=ros_context,
        parameter_overrides=[
            Parameter("model", value="default"),
            Parameter("autostart", value=False),
            Parameter("max_rate_hz", value=0.0),
            Parameter("instruction", value=instruction),
        ],
    )
    peer = rclpy.create_node("gripper_test_peer", context=ros_context)
    publishers = {
        "image": peer.create_publisher(Image, "image", QoSProfile(depth=10)),
        "points": peer.create_publisher(PointCloud2, "points", QoSProfile(depth=10)),
        "camera_info": peer.create_publisher(CameraInfo, "camera_info", QoSProfile(depth=10)),
    }
    predictions, markers = Inbox(), Inbox()
    peer.create_subscription(GraspPrediction, "/grasp_semantics/prediction", predictions, 10)
    peer.create_subscription(MarkerArray, "/grasp_semantics/markers", markers, 10)
    published = {}
    try:
        with spinning(node, peer):
            for stamp, max_width in ((1, 0.08), (2, 0.04)):
                node.set_parameters([Parameter("gripper.max_width", value=max_width)])
                assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
                assert node.predictor.gripper.max_width == max_width
                assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
                for publisher in publishers.values():
                    wait_for_subscribers(publisher)
                published[max_width] = publish_and_wait(peer, publishers, predictions, stamp)
                marker = markers.wait_until(
                    lambda m, sec=stamp: bool(m.markers) and m.markers[0].header.stamp.sec == sec
                )
                # the outline drawn is the gripper planned for: fingers as far apart as the width
                outline = marker.markers[1]
                drawn = abs(outline.points[0].x - outline.points[2].x)
                assert drawn == pytest.approx(published[max_width].grasps[0].width, abs=1e-6)
                assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
                assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS

            # an 85 mm gripper is wider than the shipped scorer was trained for: refused, and
            # accepted once the grasps are ranked by the planner instead
            node.set_parameters([Parameter("gripper.max_width", value=0.085)])
            assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
            assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
            assert "not 85 mm" in node.health.last_error
            assert "grasp_scorer:=false" in node.health.last_error
            node.set_parameters([Parameter("grasp_scorer", value=False)])
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.predictor.scorer is None and node.predictor.gripper.max_width == 0.085
    finally:
        node.on_shutdown(None)
        node.destroy_node()
        peer.destroy_node()

    wide, narrow = (
        [(pose_matrix(g.pose), g.width) for g in published[w].grasps] for w in (0.08, 0.04)
    )
    assert max(width for _, width in wide) > 0.04
    assert narrow and max(width for _, width in narrow) <= 0.04 - 2 * OPENING_CLEARANCE + 1e-6
    assert not any(
        np.allclose(pose, other) for pose, width in wide if width > 0.04 for other, _ in narrow
    )
