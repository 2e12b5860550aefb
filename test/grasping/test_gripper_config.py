"""One gripper: the one a user declares is the one grasps are planned, checked, ranked and
drawn for, or the predictor refuses it with a reason."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scenes import WIDE_SCENE  # a scene with grasps wider than 40 mm

from grasp_semantics.data.grasps import check_grasps
from grasp_semantics.data.scene import generate_scene
from grasp_semantics.grasping.decoding import decode_grasps
from grasp_semantics.grasping.gripper import from_robot_tcp, gripper_segments, to_robot_tcp
from grasp_semantics.inference.predictor import DEFAULT_WEIGHTS, GraspPredictor
from grasp_semantics.models.config import (
    OPENING_CLEARANCE,
    GraspScorerConfig,
    GripperConfig,
    HeadsConfig,
)
from grasp_semantics.models.grasp_scorer import GraspScorer


@pytest.fixture(scope="module")
def shipped() -> GraspPredictor:
    assert (DEFAULT_WEIGHTS / "model.safetensors").is_file(), "the default model is not shipped"
    return GraspPredictor.from_pretrained("default", device="cpu")


def test_gripper_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="max_width"):
        GripperConfig(max_width=2 * OPENING_CLEARANCE)
    with pytest.raises(ValueError, match="finger_depth"):
        GripperConfig(finger_depth=0.0)
    with pytest.raises(ValueError, match="palm_depth"):
        GripperConfig(palm_depth=-0.01)


def test_robot_tcp_moves_the_origin_back_along_the_approach_and_back_again() -> None:
    rng = np.random.default_rng(0)
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    rotation *= np.sign(np.linalg.det(rotation))
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, [0.1, -0.2, 0.7]
    gripper = GripperConfig(tcp_depth=0.0225)
    moved = to_robot_tcp(pose[None], gripper)[0]
    np.testing.assert_allclose(moved[:3, 3], pose[:3, 3] - 0.0225 * rotation[:, 2])
    np.testing.assert_allclose(moved[:3, :3], rotation)
    np.testing.assert_allclose(from_robot_tcp(moved[None], gripper)[0], pose)
    # drawn from the moved pose, the fingertips are where they were
    tips = gripper_segments(0.05, gripper)[0, 0]  # finger 1's tip in the robot-TCP frame
    np.testing.assert_allclose(
        moved[:3, :3] @ tips + moved[:3, 3], pose[:3, :3] @ [-0.025, 0, 0] + pose[:3, 3]
    )


def test_the_grasp_head_answers_only_with_grasps_the_gripper_can_open_to() -> None:
    """Without planning (part grasps off), the head's wider grasps are dropped, not narrowed."""
    rng = np.random.default_rng(1)
    n = 300
    points = rng.uniform(-0.1, 0.1, (n, 3)).astype(np.float32)
    contact, grasp = rng.uniform(size=n).astype(np.float32), np.full(n, 0.5, np.float32)
    approach = np.tile(np.float32([0, 0, 1]), (n, 1))
    closing = np.tile(np.float32([1, 0, 0]), (n, 1))
    width = rng.uniform(0.0, 0.08, n).astype(np.float32)
    cfg = HeadsConfig()
    cfg.part_grasps.enabled = False
    args = (points, contact, grasp, approach, closing, width, cfg, 50)
    wide = decode_grasps(*args)
    narrow = decode_grasps(*args, gripper=GripperConfig(max_width=0.04))
    assert wide["widths"].max() > 0.04
    assert len(narrow["widths"]) > 0 and narrow["widths"].max() <= 0.04
    np.testing.assert_array_equal(narrow["widths"], width[narrow["point_index"]])


def test_a_narrower_gripper_never_gets_a_wider_grasp_on_a_real_scene(shipped) -> None:
    split, seed = WIDE_SCENE
    scene = generate_scene(seed, split)
    inputs = (scene.rgb, scene.points, scene.instruction, scene.intrinsics)
    shipped.gripper = GripperConfig()
    wide = shipped.predict(*inputs)
    shipped.gripper = GripperConfig(max_width=0.04)
    try:
        narrow = shipped.predict(*inputs)
    finally:
        shipped.gripper = GripperConfig()
    assert wide.widths.max() > 0.04 + 1e-6  # the scene asks for more than 40 mm
    assert narrow.widths.max() <= 0.04 - 2 * OPENING_CLEARANCE + 1e-6
    # other grasps: every 80 mm grasp wider than 40 mm is gone
    wider = wide.poses[wide.widths > 0.04]
    assert not any(np.allclose(pose, other) for pose in wider for other in narrow.poses)
    # and the evaluation, checking them with the 40 mm gripper, finds every one within it
    check = check_grasps(
        scene.grasp_world(),
        narrow.poses,
        narrow.widths,
        scene.target,
        scene.functional_part,
        gripper=GripperConfig(max_width=0.04),
    )
    assert check.width_ok.all()


def test_the_scorer_ranks_only_for_grippers_it_was_trained_for(shipped) -> None:
    assert shipped.scorer is not None
    trained = shipped.scorer.gripper
    assert trained == GripperConfig()  # the shipped scorer: 80 mm, the default fingers
    for fine in (GripperConfig(max_width=0.04), GripperConfig(tcp_depth=0.03)):
        assert shipped.scorer.unsupported(fine) == ""
    with pytest.raises(ValueError, match=r"at most 80 mm, not 85 mm.*grasp_scorer:=false"):
        GraspPredictor.from_pretrained("default", gripper=GripperConfig(max_width=0.085))
    with pytest.raises(ValueError, match="finger_depth 45 mm, not 60 mm"):
        shipped.gripper = GripperConfig(finger_depth=0.06)
    assert shipped.gripper == GripperConfig()  # a refused gripper leaves the old one
    unranked = GraspPredictor(shipped.model, device="cpu")  # no scorer: any gripper
    unranked.gripper = GripperConfig(max_width=0.085, finger_depth=0.06)


def test_the_scorer_keeps_its_gripper_in_its_files(tmp_path) -> None:
    torch.manual_seed(0)
    gripper = GripperConfig(max_width=0.07, finger_depth=0.05)
    GraspScorer(GraspScorerConfig(hidden=(8,)), gripper).save(tmp_path, base_fingerprint="abc")
    assert GraspScorer.load(tmp_path).gripper == gripper
    # a file from before the gripper was recorded: its opening, the default fingers
    config = tmp_path / "config.yaml"
    lines = config.read_text().split("\n")
    start = lines.index("gripper:")
    del lines[start : start + 1 + len(dataclasses.fields(GripperConfig))]
    config.write_text("\n".join(lines))
    assert GraspScorer.load(tmp_path).gripper == GripperConfig(max_width=0.07)


def test_evaluate_plans_for_and_checks_with_the_gripper_it_is_given(capsys) -> None:
    from grasp_semantics.cli import main
    from grasp_semantics.evaluation.evaluate import evaluate

    common = ["evaluate", "--split", "val", "--scenes", "1", "--gripper-max-width", "0.085"]
    assert main(common) == 2  # the shipped scorer cannot rank for it: said, no traceback
    assert "--no-scorer" in capsys.readouterr().err
    results = evaluate(
        "default",
        ["val"],
        1,
        seed=2,
        device="cpu",
        progress=False,
        scorer=False,
        gripper_sizes={"max_width": 0.04},
    )
    assert results["gripper"]["max_width"] == 0.04
    assert "planner_ranking" not in results["splits"]["val"]  # no scorer: the model's ranking
    assert results["splits"]["val"]["model"]["top1_width_ok"] == 1.0
