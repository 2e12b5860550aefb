"""The synthetic rosbag2: topics, types, stamps and contents round-trip through ``rosbags``."""

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import get_typestore

from grasp_semantics.data.bag import (
    FRAME_ID,
    STORE,
    TOPIC_CLOUD,
    TOPIC_GT,
    TOPIC_GT_INFO,
    TOPIC_IMAGE,
    TOPIC_INFO,
    TOPIC_INSTRUCTION,
    TYPES,
    read_bag,
    write_bag,
)
from grasp_semantics.data.scene import generate_scene


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    scenes = [generate_scene(s, "all") for s in (1, 2)]
    path = tmp_path_factory.mktemp("bag") / "scenes"
    write_bag(path, scenes, start_ns=5 * 10**9, period_s=0.5)
    return path, scenes


def test_topics_types_and_storage(bag):
    path, _ = bag
    assert (path / "metadata.yaml").exists() and list(path.glob("*.mcap"))
    with Reader(path) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == TYPES
        assert {c.msgcount for c in reader.connections} == {2}
        order = [(c.topic, t) for c, t, _ in reader.messages()]
    meta = (path / "metadata.yaml").read_text()
    assert meta.count("RIHS01_") == len(TYPES)  # type hashes recorded for ros2 bag play
    assert "storage_identifier: mcap" in meta
    # the instruction comes before each scene's image and cloud
    first_image = next(t for topic, t in order if topic == TOPIC_IMAGE)
    first_instruction = next(t for topic, t in order if topic == TOPIC_INSTRUCTION)
    assert first_instruction < first_image
    assert [topic for topic, _ in order].index(TOPIC_INSTRUCTION) == 0


def test_round_trip(bag):
    path, scenes = bag
    back = list(read_bag(path))
    assert len(back) == len(scenes)
    for i, (b, s) in enumerate(zip(back, scenes, strict=True)):
        assert b["stamp_ns"] == 5 * 10**9 + i * 500_000_000
        assert b["frame_id"] == FRAME_ID and b["cloud_frame_id"] == FRAME_ID
        assert b["instruction"] == s.instruction
        assert set(b["topics"]) == {TOPIC_IMAGE, TOPIC_INFO, TOPIC_CLOUD, TOPIC_GT, TOPIC_GT_INFO}
        assert set(b["topics"].values()) == {b["stamp_ns"]}  # image, cloud, info: same stamp
        np.testing.assert_array_equal(b["rgb"], s.rgb)
        np.testing.assert_array_equal(b["intrinsics"], s.intrinsics)
        np.testing.assert_array_equal(b["points"], s.points)
        np.testing.assert_array_equal(b["point_object"], s.point_object)
        np.testing.assert_array_equal(b["point_part"], s.point_part)
        np.testing.assert_array_equal(b["point_contact"], s.point_contact)
        info = b["info"]
        assert info["seed"] == s.seed and info["task"] == s.task and info["target"] == s.target
        assert len(info["grasps"]) == len(s.grasps)


def test_cloud_fields(bag):
    path, _ = bag
    ts = get_typestore(STORE)
    with Reader(path) as reader:
        for conn, _, raw in reader.messages():
            if conn.topic in (TOPIC_CLOUD, TOPIC_GT):
                msg = ts.deserialize_cdr(raw, conn.msgtype)
                names = [f.name for f in msg.fields]
                if conn.topic == TOPIC_CLOUD:
                    assert names == ["x", "y", "z"] and msg.point_step == 12
                    assert all(f.datatype == 7 for f in msg.fields)
                else:
                    assert names == ["x", "y", "z", "object", "part", "contact"]
                    assert [f.datatype for f in msg.fields] == [7, 7, 7, 3, 3, 2]
                assert msg.height == 1 and msg.row_step == msg.point_step * msg.width
                assert len(msg.data) == msg.row_step
            if conn.topic == TOPIC_IMAGE:
                msg = ts.deserialize_cdr(raw, conn.msgtype)
                assert msg.encoding == "rgb8" and msg.step == msg.width * 3
