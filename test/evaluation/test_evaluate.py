"""Scoring one scene: the evaluation's metrics on predictions whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from grasp_semantics.data.scene import generate_scene
from grasp_semantics.evaluation.evaluate import (
    CRITERIA,
    RESAMPLE_KEEP,
    Scored,
    format_table,
    resampled_points,
    resampling_figures,
    score_scene,
)
from grasp_semantics.models.config import GripperConfig


@pytest.fixture(scope="module")
def scene():
    scene = generate_scene(2, "test_instance")
    assert len(scene.grasps) >= 2
    return scene


def _scored(scene, poses: np.ndarray, widths: np.ndarray) -> Scored:
    valid = np.isfinite(scene.points).all(axis=1)
    points = scene.points[valid]
    return Scored(points, scene.point_contact[valid].astype(np.float32), poses, widths)


def test_ground_truth_grasps_meet_every_criterion(scene) -> None:
    metrics = score_scene(scene, _scored(scene, scene.grasps, scene.grasp_widths), GripperConfig())
    assert metrics["part_accuracy"] == 1.0 and metrics["contact_ap"] == 1.0
    assert metrics["success_at_1"] == 1.0
    assert all(metrics[f"top1_{name}"] == 1.0 for name in CRITERIA)


def test_a_grasp_in_the_air_fails_to_close_and_only_the_top_grasp_is_read(scene) -> None:
    lifted = scene.grasps.astype(np.float64).copy()
    lifted[0, :3, 3] += 0.5 * scene.table_plane[:3]  # 50 cm up (n points up): nothing there
    metrics = score_scene(scene, _scored(scene, lifted, scene.grasp_widths), GripperConfig())
    assert metrics["top1_closes"] == 0.0 and metrics["top1_on_part"] == 0.0
    assert metrics["top1_width_ok"] == 1.0 and metrics["top1_collision_free"] == 1.0
    assert metrics["success_at_1"] == 0.0 and metrics["success_at_5"] == 1.0


def test_the_criteria_table_has_a_column_per_criterion(scene) -> None:
    row = score_scene(scene, _scored(scene, scene.grasps, scene.grasp_widths), GripperConfig())
    table = format_table(
        {"splits": {"test_instance": {"model": row}}}, [f"top1_{c}" for c in CRITERIA]
    )
    assert table.splitlines()[2] == "| test_instance | model | " + " | ".join(["1.000"] * 5) + " |"


def test_resampled_clouds_are_seeded_in_order_subsets_of_the_cloud(scene) -> None:
    first, again, second = (resampled_points(scene, k) for k in (1, 1, 2))
    assert len(first) == int(RESAMPLE_KEEP * len(scene.points))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)
    row = np.dtype((np.void, 12))
    position = {
        key.tobytes(): i
        for i, key in enumerate(np.ascontiguousarray(scene.points).view(row).ravel())
    }
    index = [position[key.tobytes()] for key in np.ascontiguousarray(first).view(row).ravel()]
    assert np.all(np.diff(index) > 0)  # points of the cloud, in its order


def test_resampling_figures_count_scenes_whose_part_choice_changes() -> None:
    correct = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 0, 1]], dtype=float)
    figures = resampling_figures(correct)  # scenes 2 and 4 change; copies right 4 of 8 times
    assert figures == {"part_accuracy": 0.5, "changed_scenes": 0.5, "copies": 2}
