"""Bag replay through the real node: one prediction per pair, headers, contacts, output bag."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from grasp_semantics.data.bag import TOPIC_CLOUD, read_bag, write_bag
from grasp_semantics.data.scene import generate_scene
from grasp_semantics.evaluate import model_method, score_scene
from grasp_semantics.gripper import GripperConfig
from grasp_semantics.predictor import GraspPredictor
from grasp_semantics.ros.conversions import cloud_to_xyz
from grasp_semantics.ros.demo import score_prediction
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


@pytest.fixture(scope="module")
def default_replayed(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay_default")
    scenes = [generate_scene(5200 + i, "test_instance") for i in range(4)]
    bag = write_bag(root / "in", iter(scenes))
    summary = replay(bag, root / "out", model="default", progress=False)
    return scenes, bag, summary


def test_replayed_grasps_match_the_ground_truth_as_the_model_itself_does(
    default_replayed,
) -> None:
    """Through the node (messages in, messages out, bag on both sides) the shipped model's
    grasps and contacts score against the ground truth exactly as its direct predictions do."""
    scenes, bag, summary = default_replayed
    assert summary.predictions == len(scenes)
    truths = {truth["stamp_ns"]: truth for truth in read_bag(bag)}
    predictor = GraspPredictor.from_pretrained("default")
    direct = model_method(predictor, neutral=False)
    gripper = GripperConfig()
    node_rows, direct_rows = [], []
    for stamp, message in summary.results:
        through_node = score_prediction(message, truths[stamp], gripper)
        node_rows.append(through_node["metrics"])
        direct_rows.append(
            score_scene(through_node["scene"], direct(through_node["scene"]), gripper)
        )
    for key in ("success_at_1", "success_at_5", "part_accuracy"):
        assert [r[key] for r in node_rows] == [r[key] for r in direct_rows], key
    np.testing.assert_allclose(
        [r["contact_ap"] for r in node_rows], [r["contact_ap"] for r in direct_rows], atol=1e-4
    )
    assert np.mean([r["success_at_5"] for r in node_rows]) > 0  # some grasps match the GT
