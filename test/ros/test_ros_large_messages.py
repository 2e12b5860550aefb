"""Camera-sized messages reach the node: a 640x480 organised cloud with a 32-byte point step
through the topics, and the shipped Fast DDS profile carrying 12 MB clouds best-effort."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from ros_helpers import Inbox, spinning, wait_for_subscribers
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header, String

from grasp_semantics.msg import GraspPrediction
from grasp_semantics.ros.conversions import rgb_to_image
from grasp_semantics.ros.node import INSTRUCTION_QOS, GraspSemanticsNode

PROFILE = Path(__file__).resolve().parents[2] / "config" / "fastdds_large_messages.xml"


def organised_cloud(header: Header, height: int = 480, width: int = 640) -> PointCloud2:
    """A depth camera's cloud: x, y, z, rgb float32 in a 32-byte point (padding as drivers
    publish it), a tilted plane 0.8 m away; ~9.8 MB."""
    v, u = np.mgrid[0:height, 0:width]
    z = 0.8 + 0.0005 * v
    table = np.zeros(
        (height, width),
        np.dtype(
            {
                "names": ["x", "y", "z", "rgb"],
                "formats": ["<f4"] * 4,
                "offsets": [0, 4, 8, 16],
                "itemsize": 32,
            }
        ),
    )
    table["x"], table["y"], table["z"] = (u - 320) * z / 500, (v - 240) * z / 500, z
    fields = [
        PointField(name=name, offset=offset, datatype=PointField.FLOAT32, count=1)
        for name, offset in (("x", 0), ("y", 4), ("z", 8), ("rgb", 16))
    ]
    return PointCloud2(
        header=header,
        height=height,
        width=width,
        fields=fields,
        is_bigendian=False,
        point_step=32,
        row_step=32 * width,
        data=table.tobytes(),
        is_dense=True,
    )


def test_a_640x480_organised_cloud_with_a_32_byte_point_step_is_predicted(ros_context):
    overrides = {"model": "tiny", "num_points": 512, "sensor_reliability": "reliable"}
    node = GraspSemanticsNode(
        context=ros_context,
        parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
    )
    peer = ros_context and __import__("rclpy").create_node("large_peer", context=ros_context)
    reliable = QoSProfile(depth=1)
    publishers = {
        "image": peer.create_publisher(Image, "image", reliable),
        "points": peer.create_publisher(PointCloud2, "points", reliable),
        "camera_info": peer.create_publisher(CameraInfo, "camera_info", reliable),
    }
    instruction = peer.create_publisher(String, "instruction", INSTRUCTION_QOS)
    predictions = Inbox()
    peer.create_subscription(GraspPrediction, "/grasp_semantics/prediction", predictions, 10)
    try:
        with spinning(node, peer):
            node.trigger_configure()
            node.trigger_activate()
            for publisher in (*publishers.values(), instruction):
                wait_for_subscribers(publisher)
            instruction.publish(String(data="hand me the mug"))
            header = Header(frame_id="camera_color_optical_frame")
            header.stamp.sec = 42
            rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
            info = CameraInfo(header=header, width=640, height=480)
            info.k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
            cloud = organised_cloud(header)
            assert len(cloud.data) == 640 * 480 * 32
            publishers["camera_info"].publish(info)
            publishers["image"].publish(rgb_to_image(rgb, header))
            publishers["points"].publish(cloud)
            prediction = predictions.wait_until(lambda m: m.header.stamp.sec == 42, 60)
            assert prediction.contacts.width == 512 and prediction.grasps
    finally:
        node.on_shutdown(None)
        node.destroy_node()
        peer.destroy_node()


SUBSCRIBER = textwrap.dedent(
    """
    import time, rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import PointCloud2
    rclpy.init()
    node = rclpy.create_node("big_sub")
    got = []
    node.create_subscription(
        PointCloud2, "big", lambda msg: got.append(len(msg.data)), qos_profile_sensor_data
    )
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while len(got) < 3 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(len(got), got[:1], flush=True)
    node.destroy_node()
    rclpy.shutdown()
    """
)
PUBLISHER = textwrap.dedent(
    """
    import sys, numpy as np, rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import PointCloud2, PointField
    rclpy.init()
    node = rclpy.create_node("big_pub")
    publisher = node.create_publisher(PointCloud2, "big", qos_profile_sensor_data)
    n = 1_000_000  # 12 MB
    msg = PointCloud2(height=1, width=n, point_step=12, row_step=12 * n, is_dense=True)
    msg.fields = [
        PointField(name=c, offset=4 * i, datatype=7, count=1) for i, c in enumerate("xyz")
    ]
    msg.data = np.ones(3 * n, np.float32).tobytes()
    while publisher.get_subscription_count() < 1:
        rclpy.spin_once(node, timeout_sec=0.05)
    for _ in range(int(sys.argv[1])):
        publisher.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.25)
    node.destroy_node()
    rclpy.shutdown()
    """
)


def best_effort_12mb_received(env: dict[str, str]) -> int:
    """How many of 40 12 MB clouds, published best-effort by one process, another receives
    (it stops listening at 3)."""
    subscriber = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert subscriber.stdout.readline().strip() == "ready"
        subprocess.run([sys.executable, "-c", PUBLISHER, "40"], env=env, timeout=120, check=True)
        out, _ = subscriber.communicate(timeout=60)
    finally:
        subscriber.kill()
    return int(out.split()[0])


@pytest.mark.slow
def test_the_shipped_dds_profile_carries_12_mb_clouds_best_effort_between_processes():
    """With Fast DDS's default transports none arrives on this machine (12 MB in UDP
    fragments, best-effort); the profile's shared-memory segment carries them."""
    env = {**os.environ, "FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)}
    assert best_effort_12mb_received(env) >= 3
