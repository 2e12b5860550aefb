"""Lifecycle: configure / activate / deactivate / cleanup, twice, and a bad checkpoint."""

from __future__ import annotations

import gc
import weakref

import pytest
import rclpy
from lifecycle_msgs.msg import State
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from ros_helpers import spinning, wait_until

from grasp_semantics.ros.node import GraspSemanticsNode

PREDICTION = "/grasp_semantics/prediction"


def make_node(
    context: rclpy.Context, model: str = "tiny", *extra: Parameter
) -> GraspSemanticsNode:
    return GraspSemanticsNode(
        context=context,
        parameter_overrides=[
            Parameter("model", value=model),
            Parameter("num_points", value=256),
            Parameter("autostart", value=False),
            *extra,
        ],
    )


def state_id(node: GraspSemanticsNode) -> int:
    return node._state_machine.current_state[0]


@pytest.mark.slow
def test_two_full_cycles_free_the_model_and_leave_no_publisher(ros_context) -> None:
    node = make_node(ros_context)
    try:
        with spinning(node):
            for _ in range(2):
                assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
                assert state_id(node) == State.PRIMARY_STATE_INACTIVE
                model = weakref.ref(node.predictor.model)
                wait_until(lambda: node.count_publishers(PREDICTION) == 1)
                wait_until(
                    lambda: node.count_subscribers("/image") == 0
                )  # sensors only while active

                assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
                assert state_id(node) == State.PRIMARY_STATE_ACTIVE
                wait_until(lambda: node.count_subscribers("/image") == 1)
                wait_until(lambda: node.count_subscribers("/points") == 1)

                assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
                assert state_id(node) == State.PRIMARY_STATE_INACTIVE
                wait_until(lambda: node.count_subscribers("/image") == 0)
                assert all(not p.is_activated for p in node._outputs.values())

                assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
                assert state_id(node) == State.PRIMARY_STATE_UNCONFIGURED
                assert node.predictor is None
                gc.collect()
                assert model() is None, "the model is still referenced after cleanup"
                wait_until(lambda: node.count_publishers(PREDICTION) == 0)
    finally:
        node.destroy_node()


@pytest.mark.slow
def test_max_cloud_points_reaches_the_predictor_and_zero_keeps_every_point(ros_context) -> None:
    for value, expected in ((40000, 40000), (5000, 5000), (0, None)):
        node = make_node(ros_context, "tiny", Parameter("max_cloud_points", value=value))
        try:
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.predictor.max_cloud_points == expected
            assert node.predictor.num_points == 256
            node.trigger_cleanup()
        finally:
            node.destroy_node()


def test_missing_or_corrupt_checkpoint_fails_configure_and_the_node_recovers(
    ros_context, tmp_path
) -> None:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.yaml").write_text("encoder: [this is not a config\n")
    (corrupt / "model.safetensors").write_bytes(b"not safetensors")
    node = make_node(ros_context, model=str(tmp_path / "missing"))
    try:
        with spinning(node):
            assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
            assert state_id(node) == State.PRIMARY_STATE_UNCONFIGURED
            assert "cannot load model" in node.health.last_error
            assert "missing" in node.health.last_error

            node.set_parameters([Parameter("model", value=str(corrupt))])
            assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
            assert str(corrupt) in node.health.last_error

            node.set_parameters([Parameter("model", value="tiny")])
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    finally:
        node.on_shutdown(None)
        node.destroy_node()


def test_a_grasp_scorer_of_another_model_fails_configure_unless_switched_off(
    ros_context, tmp_path
) -> None:
    import torch

    from grasp_semantics.models.grasp_net import GraspNet
    from grasp_semantics.models.grasp_scorer import SCORER_DIR, GraspScorer

    torch.manual_seed(0)
    model = GraspNet("tiny")
    model.save_pretrained(tmp_path / "ckpt")
    GraspScorer().save(tmp_path / "ckpt" / SCORER_DIR, base_fingerprint="another model")
    node = make_node(ros_context, model=str(tmp_path / "ckpt"))
    try:
        with spinning(node):
            assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
            assert "another grasp model" in node.health.last_error
            node.set_parameters([Parameter("grasp_scorer", value=False)])
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.predictor.scorer is None  # ranked by the planner's quality
            assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
            GraspScorer().save(tmp_path / "ckpt" / SCORER_DIR, model.fingerprint())
            node.set_parameters([Parameter("grasp_scorer", value=True)])
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert isinstance(node.predictor.scorer, GraspScorer)
    finally:
        node.on_shutdown(None)
        node.destroy_node()
