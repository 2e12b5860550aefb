"""The node's ``~/describe`` service (DescribeScene) over real rclpy: answers on a given image
or the latest one received; bad requests get success=false with a clear message and the node
keeps answering. The node runs the ``tiny`` flavour (random describe head): this checks the
service, not answer quality (test_describe_quality.py does that)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from ros_helpers import spinning, wait_for_subscribers, wait_until
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from grasp_semantics.ros.conversions import rgb_to_image
from grasp_semantics.ros.node import GraspSemanticsNode
from grasp_semantics.srv import DescribeScene

pytestmark = pytest.mark.slow  # each test talks to one node with the describe head loaded


def _image(seed: int, height: int = 64, width: int = 80) -> Image:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return rgb_to_image(rgb, Header(frame_id="camera_color_optical_frame"))


class Peer:
    """The node under test and a peer with an image publisher and a describe client."""

    def __init__(self, context: rclpy.Context) -> None:
        overrides = {"model": "tiny", "num_points": 512, "max_rate_hz": 0.0}
        self.node = GraspSemanticsNode(
            context=context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )
        self.peer = rclpy.create_node("describe_peer", context=context)
        self.image = self.peer.create_publisher(Image, "image", QoSProfile(depth=10))
        self.client = self.peer.create_client(DescribeScene, "/grasp_semantics/describe")

    def ask(self, task: str, prompt: str = "", image: Image | None = None):
        request = DescribeScene.Request(task=task, prompt=prompt)
        if image is not None:
            request.image = image
        assert self.client.wait_for_service(timeout_sec=10.0)
        future = self.client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        assert done.wait(60.0), "describe call timed out"
        return future.result()


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    context = rclpy.Context()
    rclpy.init(context=context)
    harness = Peer(context)
    with spinning(harness.node, harness.peer):
        harness.node.trigger_configure()
        harness.node.trigger_activate()
        wait_for_subscribers(harness.image)
        yield harness
    harness.node.destroy_node()
    harness.peer.destroy_node()
    context.try_shutdown()


def test_no_image_yet_is_refused(peer: Peer) -> None:
    response = peer.ask("caption")
    assert not response.success
    assert "no image in the request and none received yet" in response.message


def test_answers_on_the_given_image(peer: Peer) -> None:
    response = peer.ask("vqa", "What is on the table?", _image(1))
    assert response.success, response.message
    assert isinstance(response.answer, str) and response.message == ""
    assert 0.0 < response.confidence <= 1.0


def test_answers_on_the_latest_image(peer: Peer) -> None:
    peer.image.publish(_image(2))
    wait_until(lambda: peer.node._latest_image is not None, what="the node got the image")
    response = peer.ask("ocr")
    assert response.success, response.message


@pytest.mark.parametrize(
    ("task", "prompt", "message"),
    [
        ("translate", "", "unknown task 'translate'"),
        ("vqa", "", "'vqa' needs a prompt"),
        ("vqa", "what\x07is this", "control characters"),
        ("bad-image", "", "image"),
    ],
)
def test_bad_requests_are_refused_and_the_node_keeps_answering(
    peer: Peer, task: str, prompt: str, message: str
) -> None:
    if task == "bad-image":  # an image message whose data does not match its size
        image = _image(3)
        image.data = image.data[:-7]
        response = peer.ask("caption", "", image)
    else:
        response = peer.ask(task, prompt, _image(3))
    assert not response.success
    assert response.message.startswith("describe rejected:") and message in response.message
    assert response.answer == ""
    assert peer.ask("caption", "", _image(4)).success  # still up and answering
