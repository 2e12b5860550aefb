"""GraspPredictor: input validation, outputs, batching, checkpoints."""

import numpy as np
import pytest
import torch

from grasp_semantics.models.config import get_config
from grasp_semantics.models.grasp_net import GraspNet
from grasp_semantics.predictor import DEFAULT_WEIGHTS, GraspPredictor, Prediction

K = np.array([[300.0, 0, 80], [0, 300, 60], [0, 0, 1]], dtype=np.float32)
STAGES = {"preprocess", "encoder", "point_sampling", "point_net", "heads", "decode"}


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    cfg = get_config("tiny")
    cfg.pointnet.num_points = 256
    return GraspPredictor(GraspNet(cfg), device="cpu")


def inputs(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    points = rng.uniform(-0.1, 0.1, (n, 3)).astype(np.float32)
    points[:, 2] += 0.5
    return rgb, points


def test_predict_outputs(predictor, monkeypatch):
    # a random point cube leaves no room for the gripper: shapes only, without the collision check
    monkeypatch.setattr(predictor.model.cfg.heads, "collision_check", False)
    rgb, points = inputs()
    pred = predictor.predict(rgb, points, "hand me the knife", intrinsics=K, max_grasps=5)
    assert isinstance(pred, Prediction)
    assert pred.points.shape == (256, 3) and pred.points.dtype == np.float32
    assert pred.contact.shape == (256,) and ((pred.contact >= 0) & (pred.contact <= 1)).all()
    g = len(pred.poses)
    assert 1 <= g <= 5 and pred.poses.shape == (g, 4, 4)
    assert pred.widths.shape == pred.scores.shape == pred.contact_scores.shape == (g,)
    assert pred.contact_points.shape == (g, 3)
    assert set(pred.timings) >= STAGES and all(v >= 0 for v in pred.timings.values())
    # sampled points come from the input cloud
    d = np.linalg.norm(pred.points[:, None] - points[None], axis=-1).min(1)
    assert d.max() < 1e-6


def test_nan_points_are_removed_and_few_points_are_padded(predictor):
    rgb, points = inputs(n=100)
    points[:10] = np.nan
    points[10] = np.inf
    pred = predictor.predict(rgb, points, "pour the water")
    assert np.isfinite(pred.points).all() and pred.points.shape == (256, 3)


def test_the_same_input_gives_the_same_prediction_whatever_came_before(predictor):
    rgb, points = inputs(n=100, seed=5)  # fewer points than sampled: random repeats
    first = predictor.predict(rgb, points, "pour the water")
    predictor.predict(*inputs(n=120, seed=6), "hand me the knife")
    again = predictor.predict(rgb, points, "pour the water")
    np.testing.assert_array_equal(first.points, again.points)
    np.testing.assert_array_equal(first.contact, again.contact)


def test_encoder_cache_reused_across_predictions(predictor):
    rgb, points = inputs(seed=3)
    predictor.predict(rgb, points, "stir the soup")
    calls = predictor.model.encoder.backbone_calls
    predictor.predict(rgb, points + 0.01, "stir the soup")
    assert predictor.model.encoder.backbone_calls == calls


def test_predict_batch(predictor):
    (rgb, points), (rgb2, points2) = inputs(seed=1), inputs(n=500, seed=2)
    preds = predictor.predict_batch([rgb, rgb2], [points, points2], ["cut", "open"], max_grasps=3)
    assert len(preds) == 2 and all(len(p.poses) <= 3 for p in preds)
    assert preds[1].instruction == "open"


@pytest.mark.parametrize(
    ("rgb", "points", "instruction", "match"),
    [
        (np.zeros((120, 160, 3), np.float32), None, "x", "uint8"),
        (np.zeros((120, 160), np.uint8), None, "x", "H x W x 3"),
        (np.zeros((120, 160, 4), np.uint8), None, "x", "H x W x 3"),
        (None, np.zeros((100, 2), np.float32), "x", r"\(N, 3\)"),
        (None, np.full((100, 3), np.nan, np.float32), "x", "too few"),
        (None, np.zeros((5, 3), np.float32), "x", "too few"),
        (None, None, "   ", "non-empty"),
        (None, None, "x" * 5000, "at most"),
    ],
)
def test_input_validation(predictor, rgb, points, instruction, match):
    good_rgb, good_points = inputs()
    rgb = good_rgb if rgb is None else rgb
    points = good_points if points is None else points
    with pytest.raises(ValueError, match=match):
        predictor.predict(rgb, points, instruction)


def test_bad_intrinsics_and_pixel_aligned_needs_them():
    cfg = get_config("tiny")
    cfg.pointnet.num_points = 128
    cfg.fusion.mode = "pixel_aligned"
    pred = GraspPredictor(GraspNet(cfg), device="cpu")
    rgb, points = inputs()
    with pytest.raises(ValueError, match="intrinsics"):
        pred.predict(rgb, points, "hand me the mug")
    with pytest.raises(ValueError, match="3x3"):
        pred.predict(rgb, points, "hand me the mug", intrinsics=np.eye(2))
    assert len(pred.predict(rgb, points, "hand me the mug", intrinsics=K).poses) > 0


def test_from_pretrained_directory_and_missing_default(tmp_path, predictor):
    predictor.model.save_pretrained(tmp_path / "ckpt")
    loaded = GraspPredictor.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert loaded.num_points == 256
    if not DEFAULT_WEIGHTS.exists():
        with pytest.raises(FileNotFoundError, match="default weights"):
            GraspPredictor.from_pretrained("default")
    with pytest.raises(FileNotFoundError, match="neither a checkpoint"):
        GraspPredictor.from_pretrained(tmp_path / "nothing")


def test_bf16_backbone_on_cpu():
    cfg = get_config("debug_qwen3_vl")
    cfg.pointnet.num_points = 128
    pred = GraspPredictor(GraspNet(cfg), device="cpu", dtype=torch.bfloat16)
    assert pred.model.encoder.backbone_dtype() == torch.bfloat16
    assert next(pred.model.heads.parameters()).dtype == torch.float32
    rgb, points = inputs()
    out = pred.predict(rgb, points, "hand me the scissors")
    assert np.isfinite(out.contact).all() and len(out.poses) > 0


def test_warm_up_runs_the_configured_sizes_and_leaves_the_cache_empty(predictor):
    calls = predictor.model.encoder.backbone_calls
    assert predictor.warm_up(runs=1) > 0
    assert predictor.model.encoder.backbone_calls == calls + 1
    assert not predictor.model.encoder._cache


def test_compile_flag_compiles_the_point_network_and_heads_in_place():
    torch.manual_seed(0)
    cfg = get_config("tiny")
    cfg.pointnet.num_points = 256
    compiled = GraspPredictor(GraspNet(cfg), device="cpu", compile=True)
    model = compiled.model
    assert compiled.compiled
    for module in (model.pointnet, model.fusion, model.heads):
        assert module._compiled_call_impl is not None  # compiled on first call (warm_up)
    assert model.encoder._compiled_call_impl is None
    assert set(model.state_dict()) == set(GraspNet(cfg).state_dict())  # names unchanged


def test_thin_cloud_keeps_a_seeded_uniform_subset_in_order(predictor, monkeypatch):
    rng = np.random.default_rng(0)
    cloud = rng.uniform(-0.1, 0.1, (5000, 3)).astype(np.float32)
    monkeypatch.setattr(predictor, "max_cloud_points", 1200)
    thin = predictor.thin_cloud(cloud)
    assert thin.shape == (1200, 3)
    index = np.flatnonzero(np.isin(cloud[:, 0], thin[:, 0]))
    assert len(index) == 1200 and np.array_equal(cloud[index], thin)  # a subset, in order
    assert np.array_equal(predictor.thin_cloud(cloud), thin)  # the same every call
    # spread over the whole cloud, not a block of it
    assert index.min() < 100 and index.max() > 4900
    assert np.array_equal(predictor.thin_cloud(cloud[:1000]), cloud[:1000])  # fewer: all
    monkeypatch.setattr(predictor, "max_cloud_points", None)
    assert len(predictor.thin_cloud(cloud)) == 5000


def test_sampling_and_grasp_planning_see_the_thinned_cloud(predictor, monkeypatch):
    """The network samples from the thinned cloud and the grasps are planned (collisions
    checked) on it, not on the full one."""
    import grasp_semantics.predictor as module

    planned_on = []
    decode = module.decode_grasps

    def spy(*args, cloud=None, **kwargs):
        planned_on.append(cloud)
        return decode(*args, cloud=cloud, **kwargs)

    monkeypatch.setattr(module, "decode_grasps", spy)
    monkeypatch.setattr(predictor, "max_cloud_points", 600)
    rgb, points = inputs(n=3000, seed=3)
    pred = predictor.predict(rgb, points, "hand me the knife", intrinsics=K)
    thin = predictor.thin_cloud(points)
    assert len(planned_on) == 1 and np.array_equal(planned_on[0], thin)
    assert np.isin(pred.points[:, 0], thin[:, 0]).all()
