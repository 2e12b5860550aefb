"""Bag replay through the real node: one prediction per pair, headers, contacts, output bag."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from grasp_semantics.data.bag import TOPIC_CLOUD, read_bag, write_bag
from grasp_semantics.data.scene import generate_scene
from grasp_semantics.evaluation.evaluate import model_method, score_scene
from grasp_semantics.inference.predictor import GraspPredictor
from grasp_semantics.models.config import GripperConfig
from grasp_semantics.ros.conversions import cloud_to_xyz
from grasp_semantics.ros.demo import jitter_cloud, part_margin, score_prediction
from grasp_semantics.ros.replay import OUTPUTS, replay


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    bag = write_bag(root / "in", (generate_scene(900 + i, "test_instance") for i in range(3)))
    summary = replay(bag, root / "out", model="tiny", progress=False)
    return bag, root / "out", summary


@pytest.mark.slow
def test_one_prediction_per_pair_in_stamp_order(replayed) -> None:
    bag, _, summary = replayed
    truths = list(read_bag(bag))
    assert summary.pairs == summary.predictions == len(truths) == 3
    assert [stamp for stamp, _ in summary.results] == [t["stamp_ns"] for t in truths]
    assert summary.instructions == 3
    assert [m.instruction for _, m in summary.results] == [t["instruction"] for t in truths]


@pytest.mark.slow
def test_outputs_carry_the_cloud_header_and_points_it_saw(replayed) -> None:
    bag, _, summary = replayed
    for (stamp, message), truth in zip(summary.results, read_bag(bag), strict=True):
        assert message.header.frame_id == truth["frame_id"]
        assert stamp == truth["stamp_ns"]
        seen = cloud_to_xyz(message.contacts).points
        inputs = {p.tobytes() for p in truth["points"]}
        assert len(seen) == 2048 and all(p.tobytes() in inputs for p in seen)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_part_margin_is_positive_exactly_when_the_part_choice_is_right(
    default_replayed,
) -> None:
    """The demo's per-scene ``part_margin`` (how close the part choice came to the other
    answer) agrees in sign with part accuracy, a tie (0) either way; by hand: 0.7 on the part
    against 0.6 off it."""
    _, bag, summary = default_replayed
    truths = {truth["stamp_ns"]: truth for truth in read_bag(bag)}
    for stamp, message in summary.results:
        scored = score_prediction(message, truths[stamp], GripperConfig())
        if scored["part_margin"] != 0:  # a tie: the same smoothed probability on and off
            assert (scored["part_margin"] > 0) == bool(scored["metrics"]["part_accuracy"])
    labels = np.array([0, 1, 1, 0])
    assert part_margin(np.array([0.6, 0.7, 0.2, 0.1]), labels) == pytest.approx(0.1)
    assert part_margin(np.array([0.9, 0.7, 0.2, 0.1]), labels) == pytest.approx(-0.2)
    assert part_margin(np.array([1.0, 1.0, 0.2, 0.1]), labels) == 0.0  # a tie
    assert np.isnan(part_margin(np.ones(4), np.zeros(4)))


def test_jittered_clouds_move_each_coordinate_by_at_most_one_float32_step() -> None:
    points = np.random.default_rng(0).uniform(-1, 1, (500, 3)).astype(np.float32)
    moved = jitter_cloud(points, np.random.default_rng(1))
    assert moved.dtype == np.float32 and moved.shape == points.shape
    steps = np.abs(moved.view(np.int32).astype(np.int64) - points.view(np.int32))
    assert steps.max() == 1 and 0.5 < (steps == 1).mean() < 0.8  # two in three move
