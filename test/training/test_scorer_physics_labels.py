"""Physics labels for the grasp scorer: each candidate's label is its own MuJoCo trial, the
cache is keyed by the label kind and the trial settings and resumes a stopped run, and the
comparison ranks as the predictor does (best first after pose NMS)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from grasp_semantics.data.grasps import check_grasps
from grasp_semantics.data.scene import generate_scene
from grasp_semantics.inference.predictor import GraspPredictor
from grasp_semantics.models.config import GraspScorerConfig, HeadsConfig
from grasp_semantics.physics.trial import OUTCOMES, SceneSpec, TrialConfig, TrialWorld
from grasp_semantics.training import scorer_physics_labels, train_scorer
from grasp_semantics.training.compare_scorer_labels import ranking_successes
from grasp_semantics.training.scorer_physics_labels import (
    TriedCandidates,
    physics_key,
    prepare_tried,
)
from grasp_semantics.training.train_scorer import (
    FRICTION,
    ScorerDataConfig,
    ScorerTrainConfig,
    candidates_key,
    scene_candidates,
)

SPLIT, SEED = "val", 1  # 27 candidates, 22 of which hold in MuJoCo: both labels occur


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """One val scene's candidates tried in this process, in a fresh cache."""
    cache = tmp_path_factory.mktemp("cache")
    cfg = ScorerTrainConfig(data=ScorerDataConfig(cache_dir=str(cache), workers=0))
    predictor = GraspPredictor.from_pretrained("default", device="cpu", scorer=False)
    key = candidates_key(predictor.model, GraspScorerConfig())
    return cfg, key, predictor, prepare_tried(cfg, key, SPLIT, 1, SEED, progress=False)


@pytest.mark.slow
def test_physics_labels_are_the_trials_of_the_geometric_paths_candidates(labelled) -> None:
    _, _, predictor, tried = labelled
    scene = generate_scene(SEED, SPLIT)
    geometric = scene_candidates(predictor, scene, GraspScorerConfig())
    # the same candidates in the same order: features, geometric labels, and the poses kept
    np.testing.assert_array_equal(tried.features, geometric.features)
    np.testing.assert_array_equal(tried.geometric, geometric.success)
    check = check_grasps(
        scene.grasp_world(),
        tried.poses,
        tried.widths,
        scene.target,
        scene.functional_part,
        mu=FRICTION,
        gripper=predictor.gripper,
    )
    np.testing.assert_array_equal(check.success, tried.geometric)
    assert tried.physics.any() and not tried.physics.all()
    np.testing.assert_array_equal(tried.physics, tried.outcome == OUTCOMES.index("success"))
    spec = SceneSpec.of(scene)
    world = TrialWorld(spec, predictor.gripper)
    for i in (int(np.argmax(tried.physics)), int(np.argmin(tried.physics))):  # one of each
        result = world.run(spec.to_world(tried.poses[i]), float(tried.widths[i]))
        assert result.outcome == OUTCOMES[tried.outcome[i]]
        assert result.success == tried.physics[i]
    physics = tried.candidates("physics")
    np.testing.assert_array_equal(physics.success, tried.physics)
    np.testing.assert_array_equal(physics.features, geometric.features)
    np.testing.assert_array_equal(tried.candidates("geometric").success, geometric.success)


def test_the_cache_key_names_the_label_kind_and_the_trial_settings() -> None:
    key = "fingerprint-digest"  # train_scorer.candidates_key: the geometric labels' key
    assert physics_key(key) != key and physics_key(key).startswith(f"{key}-physics-")
    assert physics_key(key) == physics_key(key, TrialConfig())
    assert physics_key(key, TrialConfig(grip_force=20.0)) != physics_key(key)
    assert physics_key("another-model") != physics_key(key)


@pytest.mark.slow
def test_a_stopped_run_resumes_from_the_scenes_already_cached(labelled, monkeypatch) -> None:
    cfg, key, _, tried = labelled  # scene SEED is cached; SEED + 1 was never tried
    tried_now: list[list[int]] = []

    def stand_in(model, split, seeds, scorer, trial, directory) -> int:
        """Records which scenes would be tried; writes one made-up candidate for each."""
        tried_now.append(list(seeds))
        for s in seeds:
            TriedCandidates(
                np.zeros((1, tried.features.shape[1]), np.float32),
                np.ones(1, bool),
                np.zeros(1, bool),
                np.zeros(1, np.int8),
                np.zeros(1),
                np.full(1, s),
                np.eye(4)[None],
                np.full(1, 0.05),
            ).save(Path(directory) / f"{s}.npz")
        return len(seeds)

    monkeypatch.setattr(scorer_physics_labels, "label_scenes", stand_in)
    resumed = prepare_tried(cfg, key, SPLIT, 2, SEED, progress=False)
    assert tried_now == [[SEED + 1]]  # only the missing scene
    n = len(tried.physics)
    np.testing.assert_array_equal(resumed.physics[:n], tried.physics)  # read back, not redone
    np.testing.assert_array_equal(resumed.poses[:n], tried.poses)
    assert resumed.scene[n:].tolist() == [SEED + 1]
    tried_now.clear()
    prepare_tried(cfg, key, SPLIT, 2, SEED, progress=False)
    assert tried_now == []
    other = prepare_tried(cfg, key, SPLIT, 1, SEED, TrialConfig(grip_force=20.0), progress=False)
    assert tried_now == [[SEED]] and other.physics.tolist() == [True]  # other settings: redone


def test_rankings_are_judged_best_first_after_the_predictors_pose_nms() -> None:
    pose = np.eye(4)
    near = np.eye(4)
    near[:3, 3] = [0.005, 0.0, 0.0]  # within 2 cm and 30 deg of the first: a duplicate
    far = np.eye(4)
    far[:3, 3] = [0.2, 0.0, 0.0]
    tried = TriedCandidates(
        features=np.zeros((4, 3), np.float32),
        physics=np.array([False, True, True, True]),
        geometric=np.array([True, False, False, True]),
        outcome=np.zeros(4, np.int8),
        quality=np.zeros(4),
        scene=np.array([0, 0, 0, 1]),
        poses=np.stack([pose, near, far, pose]),
        widths=np.full(4, 0.05),
    )
    heads = HeadsConfig()
    got = ranking_successes(np.array([0.9, 0.8, 0.1, 0.5]), tried, heads, k=2)
    # scene 0: the best fails in physics; the duplicate is suppressed, the far one holds
    assert got["physics_success_at_1"].tolist() == [False, True]
    assert got["physics_success_at_2"].tolist() == [True, True]
    assert got["geometric_success_at_1"].tolist() == [True, True]
    # ranked the other way round, the near duplicate is the best and holds
    flipped = ranking_successes(np.array([0.8, 0.9, 0.1, 0.5]), tried, heads, k=2)
    assert flipped["physics_success_at_1"].tolist() == [True, True]
    # and suppresses the first, scene 0's only geometric pass
    assert flipped["geometric_success_at_2"].tolist() == [False, True]


def test_the_labels_come_from_the_config_or_the_command_line() -> None:
    parser = argparse.ArgumentParser()
    train_scorer.add_arguments(parser, "train-scorer")
    assert train_scorer.run_config(parser.parse_args([])).data.labels == "geometric"
    args = parser.parse_args(["--labels", "physics"])
    assert train_scorer.run_config(args).data.labels == "physics"
    with pytest.raises(SystemExit):
        parser.parse_args(["--labels", "simulated"])
    with pytest.raises(ValueError, match=r"data\.labels must be 'geometric' or 'physics'"):
        train_scorer.train_scorer(ScorerTrainConfig(data=ScorerDataConfig(labels="simulated")))
