"""The grasp scorer: its gripper-frame features on hand-built cases, files and fingerprints,
ranking inside decoding and the predictor, and a short training run on real scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from grasp_semantics.grasping.decoding import decode_grasps
from grasp_semantics.grasping.part_planning import PlannedGrasps, plan_part_grasps
from grasp_semantics.grasping.scorer_features import gripper_view, gripper_view_reference
from grasp_semantics.inference.predictor import GraspPredictor
from grasp_semantics.models.config import GraspScorerConfig, GripperConfig, HeadsConfig, get_config
from grasp_semantics.models.grasp_net import GraspNet
from grasp_semantics.models.grasp_scorer import SCORER_DIR, GraspScorer
from grasp_semantics.training.train_scorer import (
    Candidates,
    ScorerDataConfig,
    ScorerOptimConfig,
    ScorerTrainConfig,
    ranking_figures,
    train_scorer,
)

CFG = GraspScorerConfig()
N_CELLS = int(np.prod(CFG.cells))


def rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def planned_at(
    rotation: np.ndarray, tcp: np.ndarray, local: np.ndarray, contact: np.ndarray, up: np.ndarray
) -> PlannedGrasps:
    """One candidate at ``tcp`` with ``rotation``, surrounded by points given in its frame."""
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, tcp
    return PlannedGrasps(
        poses=pose[None],
        widths=np.array([0.04]),
        scores=np.array([0.7]),
        seed_index=0,
        points=local @ rotation.T + tcp,
        contact=contact,
        up=up,
    )


def cell_of(local: np.ndarray) -> int:
    """Flat index of the cell holding gripper-frame point ``local`` [3]."""
    low, high, cells = np.array(CFG.low), np.array(CFG.high), np.array(CFG.cells)
    i = np.floor((local - low) / (high - low) * cells).astype(int)
    return int((i[0] * cells[1] + i[1]) * cells[2] + i[2])


def test_gripper_view_counts_points_and_averages_contact_per_cell_in_the_gripper_frame():
    local = np.array(
        [
            [0.0, 0.0, -0.02],  # between the fingers
            [0.001, 0.001, -0.021],  # the same cell
            [0.045, 0.02, 0.01],  # a far corner of the box
            [0.2, 0.0, 0.0],  # outside the box: not counted
        ]
    )
    contact = np.array([0.9, 0.5, 0.2, 1.0])
    up = np.array([0.0, 0.0, 1.0])
    features = {}
    for angle in (0.0, 0.8):  # the same surroundings seen by a turned gripper
        rotation = rotation_z(angle) @ np.diag([1.0, -1.0, -1.0])  # approach straight down
        planned = planned_at(rotation, np.array([0.1, -0.2, 0.6]), local, contact, up)
        features[angle] = gripper_view(planned, CFG, max_width=0.08)[0]
    f = features[0.0]
    assert f.shape == (CFG.num_features,)
    count, mean_contact = f[:N_CELLS], f[N_CELLS : 2 * N_CELLS]
    middle, corner = cell_of(local[0]), cell_of(local[2])
    assert count[middle] == pytest.approx(np.log1p(2))
    assert mean_contact[middle] == pytest.approx(0.7)
    assert count[corner] == pytest.approx(np.log1p(1))
    assert mean_contact[corner] == pytest.approx(0.2)
    assert np.count_nonzero(count) == 2  # the point outside the box is nowhere
    # up, seen from a gripper approaching straight down: against the approach (+z)
    np.testing.assert_allclose(f[2 * N_CELLS : 2 * N_CELLS + 3], [0.0, 0.0, -1.0], atol=1e-6)
    # opening / max, quality, the part's rank and relative probability
    np.testing.assert_allclose(f[-4:], [0.5, 0.7, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(features[0.8], f, atol=1e-6)  # only the gripper frame matters


@pytest.mark.parametrize("seed", [20_000_000, 20_000_001, 20_000_002, 20_000_003])
def test_gripper_view_equals_its_reference_on_grasps_planned_on_a_scene(seed):
    """The fast features (points cut to the grids' reach, coordinates one axis at a time) are
    the straightforward computation's (to the bit, but for points on a cell boundary), on
    candidates planned across a held-out scene's functional part (its labels as the contact
    probabilities)."""
    from grasp_semantics.data.scene import generate_scene

    scene = generate_scene(seed, "val")
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(scene.points), 2048, replace=False)
    contact = np.where(scene.point_contact[sample] > 0, 0.9, 0.05).astype(np.float32)
    contact[np.argmax(contact)] = 0.95
    planned = plan_part_grasps(
        scene.points[sample], contact, scene.points, HeadsConfig().part_grasps, GripperConfig()
    )
    assert planned is not None and len(planned.poses) >= 4
    fast = gripper_view(planned, CFG, max_width=0.08)
    reference = gripper_view_reference(planned, CFG, max_width=0.08)
    assert fast[:, :N_CELLS].sum() > 0  # the part's points fill some cells
    # equal but where a point lies on a cell's boundary, which float rounding may put on
    # either side (3 of 81,228 values, on one candidate of val scene 20,000,001)
    assert (fast != reference).mean() <= 1e-4
    assert (fast != reference).any(axis=1).sum() <= 1


def test_scorer_round_trips_through_its_files_and_refuses_another_grasp_model(tmp_path):
    torch.manual_seed(0)
    scorer = GraspScorer(GraspScorerConfig(hidden=(16,)), GripperConfig(max_width=0.07)).eval()
    scorer.save(tmp_path, base_fingerprint="abc")
    loaded = GraspScorer.load(tmp_path, base_fingerprint="abc")
    assert loaded.cfg == scorer.cfg and loaded.max_width == 0.07
    x = torch.randn(5, scorer.cfg.num_features)
    torch.testing.assert_close(loaded(x), scorer(x))
    with pytest.raises(RuntimeError, match="another grasp model"):
        GraspScorer.load(tmp_path, base_fingerprint="xyz")
    with pytest.raises(FileNotFoundError):
        GraspScorer.load(tmp_path / "missing")


class PreferLast:
    """A ranking that prefers candidates in the reverse of the planner's order."""

    def __init__(self) -> None:
        self.seen: PlannedGrasps | None = None

    def __call__(self, planned: PlannedGrasps) -> np.ndarray:
        self.seen = planned
        return 1.0 - planned.scores


def test_decode_ranks_planned_grasps_by_the_given_scores():
    from test_part_grasps import head_outputs, oracle_inputs

    scene, points, contact = oracle_inputs(7000)
    head = head_outputs(points, contact)
    by_quality = decode_grasps(points, contact, *head, HeadsConfig(), 5, scene.points)
    rank = PreferLast()
    by_rank = decode_grasps(
        points, contact, *head, HeadsConfig(), 5, scene.points, rank_planned=rank
    )
    assert rank.seen is not None and len(rank.seen.poses) > len(by_rank["poses"])
    # the ranking saw only collision-free candidates; the best by it comes first
    best = np.argmin(rank.seen.scores)
    np.testing.assert_allclose(by_rank["poses"][0], rank.seen.poses[best])
    assert by_rank["scores"][0] == pytest.approx(1.0 - rank.seen.scores[best])
    assert (np.diff(by_rank["scores"]) <= 1e-7).all()
    assert not np.allclose(by_rank["poses"][0], by_quality["poses"][0])


def test_predictor_loads_the_scorer_beside_its_weights_only_for_that_model(tmp_path):
    torch.manual_seed(0)
    cfg = get_config("tiny")
    cfg.pointnet.num_points = 256
    model = GraspNet(cfg)
    model.save_pretrained(tmp_path / "ckpt")
    GraspScorer(GraspScorerConfig(hidden=(8,))).save(
        tmp_path / "ckpt" / SCORER_DIR, model.fingerprint()
    )
    assert isinstance(GraspPredictor.from_pretrained(tmp_path / "ckpt").scorer, GraspScorer)
    assert GraspPredictor.from_pretrained(tmp_path / "ckpt", scorer=False).scorer is None
    GraspNet(cfg).save_pretrained(tmp_path / "ckpt")  # other weights, the same directory
    with pytest.raises(RuntimeError, match="another grasp model"):
        GraspPredictor.from_pretrained(tmp_path / "ckpt")


def test_ranking_figures_on_a_hand_built_set():
    # scene 0: the planner's best fails, the scorer's succeeds; scene 1: both succeed;
    # scene 2: nothing succeeds
    candidates = Candidates(
        features=np.zeros((6, 1), np.float32),
        success=np.array([False, True, True, False, False, False]),
        quality=np.array([0.9, 0.5, 0.8, 0.1, 0.3, 0.2]),
        scene=np.array([0, 0, 1, 1, 2, 2]),
    )
    figures = ranking_figures(np.array([0.2, 0.8, 0.6, 0.4, 0.1, 0.3]), candidates)
    assert figures["scenes_with_candidates"] == 3
    assert figures["scorer_success_at_1"] == pytest.approx(2 / 3)
    assert figures["planner_success_at_1"] == pytest.approx(1 / 3)
    assert figures["any_success"] == pytest.approx(2 / 3)
    assert figures["candidate_ap"] == pytest.approx(1.0)  # both successes ranked above the rest


@pytest.mark.slow
def test_train_scorer_on_a_few_scenes_writes_a_scorer_the_predictor_uses(tmp_path):
    cfg = ScorerTrainConfig(
        model="default",
        out_dir=str(tmp_path / "model" / SCORER_DIR),
        scorer={"hidden": [16]},
        data=ScorerDataConfig(
            cache_dir=str(tmp_path / "cache"), train_scenes=4, val_scenes=2, workers=1
        ),
        optim=ScorerOptimConfig(epochs=2),
    )
    figures = train_scorer(cfg, progress=False)
    assert figures["train_candidates"] > 0 and figures["scenes_with_candidates"] >= 1
    assert 0.0 <= figures["scorer_success_at_1"] <= figures["any_success"] <= 1.0
    log = [
        json.loads(line)
        for line in (tmp_path / "model" / SCORER_DIR / "train_log.jsonl").read_text().splitlines()
    ]
    assert [row["epoch"] for row in log] == [1, 2]
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 2  # train and val, cached
    default = GraspPredictor.from_pretrained("default", device="cpu", scorer=False)
    loaded = GraspScorer.load(tmp_path / "model" / SCORER_DIR, default.model.fingerprint())
    assert loaded.cfg.hidden == (16,)


def test_train_scorer_command_line_overrides_its_config():
    import argparse

    from grasp_semantics.training import train_scorer

    parser = argparse.ArgumentParser()
    train_scorer.add_arguments(parser, "train-scorer")
    args = parser.parse_args(["--epochs", "3", "--model", "ckpt", "--out-dir", "out"])
    cfg = train_scorer.head_run_config(ScorerTrainConfig, args, "epochs")
    assert (cfg.optim.epochs, cfg.model, cfg.out_dir) == (3, "ckpt", "out")
    shipped = train_scorer.head_run_config(ScorerTrainConfig, parser.parse_args([]), "epochs")
    assert shipped.model == "default" and shipped.data.train_scenes == 1500  # the yaml's


def test_a_truncated_weights_file_is_named_in_the_error(tmp_path) -> None:
    GraspScorer().save(tmp_path / "scorer", base_fingerprint="model")
    weights = tmp_path / "scorer" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5])
    with pytest.raises(ValueError, match=f"cannot read {weights}"):
        GraspScorer.load(tmp_path / "scorer", "model")
