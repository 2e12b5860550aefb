"""Bag replay through the real node: one prediction per pair, headers, contacts, output bag."""

from __future__ import annotations

import pytest
from rosbags.rosbag2 import Reader

from grasp_semantics.data.bag import TOPIC_CLOUD, read_bag, write_bag
from grasp_semantics.data.scene import generate_scene
from grasp_semantics.ros.conversions import cloud_to_xyz
from grasp_semantics.ros.replay import OUTPUTS, replay


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    bag = write_bag(root / "in", (generate_scene(900 + i, "test_instance") for i in range(3)))
    summary = replay(bag, root / "out", model="tiny", progress=False)
    return bag, root / "out", summary


def test_one_prediction_per_pair_in_stamp_order(replayed) -> None:
    bag, _, summary = replayed
    truths = list(read_bag(bag))
    assert summary.pairs == summary.predictions == len(truths) == 3
    assert [stamp for stamp, _ in summary.results] == [t["stamp_ns"] for t in truths]
    assert summary.instructions == 3
    assert [m.instruction for _, m in summary.results] == [t["instruction"] for t in truths]


def test_outputs_carry_the_cloud_header_and_points_it_saw(replayed) -> None:
    bag, _, summary = replayed
    for (stamp, message), truth in zip(summary.results, read_bag(bag), strict=True):
        assert message.header.frame_id == truth["frame_id"]
        assert stamp == truth["stamp_ns"]
        seen = cloud_to_xyz(message.contacts).points
        inputs = {p.tobytes() for p in truth["points"]}
        assert len(seen) == 2048 and all(p.tobytes() in inputs for p in seen)


def test_output_bag_holds_every_output_topic(replayed) -> None:
    _, out, summary = replayed
    with Reader(out) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    for name in OUTPUTS:
        assert counts[f"/grasp_semantics/{name}"] == summary.predictions
    assert TOPIC_CLOUD not in counts
