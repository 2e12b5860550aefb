"""GraspPredictor: input validation, outputs, batching, checkpoints."""

import numpy as np
import pytest
import torch

from grasp_semantics.inference.predictor import DEFAULT_WEIGHTS, GraspPredictor, Prediction
from grasp_semantics.models.config import get_config
from grasp_semantics.models.grasp_net import GraspNet

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


@pytest.fixture(scope="module")
def colour_predictor():
    """Point colours as network input: the point path depends on the image and intrinsics."""
    torch.manual_seed(0)
    cfg = get_config("tiny")
    cfg.pointnet.num_points = 256
    cfg.pointnet.colour = True
    return GraspPredictor(GraspNet(cfg), device="cpu")


def _point_net_runs(predictor, rgb, points, instruction, k=K):
    calls = predictor.point_net_calls
    prediction = predictor.predict(rgb, points, instruction, intrinsics=k)
    return predictor.point_net_calls - calls, prediction


def test_point_cache_serves_a_new_instruction_on_a_cloud_already_seen(colour_predictor):
    rgb, points = inputs(seed=7)
    colour_predictor.clear_caches()
    assert _point_net_runs(colour_predictor, rgb, points, "stir the soup")[0] == 1
    backbone = colour_predictor.model.encoder.backbone_calls
    runs, cached = _point_net_runs(colour_predictor, rgb, points, "pour the water")
    assert runs == 0 and colour_predictor.model.encoder.backbone_calls == backbone + 1
    uncached = GraspPredictor(colour_predictor.model, device="cpu", point_cache_size=0)
    fresh = uncached.predict(rgb, points, "pour the water", intrinsics=K)
    np.testing.assert_array_equal(cached.points, fresh.points)
    np.testing.assert_array_equal(cached.contact, fresh.contact)
    np.testing.assert_array_equal(cached.poses, fresh.poses)


def test_point_cache_misses_when_what_the_point_path_reads_changes(colour_predictor):
    rgb, points = inputs(seed=8)
    colour_predictor.clear_caches()
    _point_net_runs(colour_predictor, rgb, points, "cut")
    assert _point_net_runs(colour_predictor, rgb, points + 0.001, "cut")[0] == 1  # the cloud
    assert _point_net_runs(colour_predictor, 255 - rgb, points, "cut")[0] == 1  # its colours
    longer_focus = K * np.array([[1.1], [1.1], [1.0]], dtype=np.float32)
    assert (
        _point_net_runs(colour_predictor, rgb, points, "cut", longer_focus)[0] == 1
    )  # projection
    assert _point_net_runs(colour_predictor, rgb, points, "cut")[0] == 0  # the first, kept
    colour_predictor.num_points = 128  # the node's num_points parameter
    try:
        runs, prediction = _point_net_runs(colour_predictor, rgb, points, "cut")
    finally:
        colour_predictor.num_points = 256
    assert runs == 1 and prediction.points.shape == (128, 3)


def test_point_cache_ignores_the_image_when_the_network_reads_no_colours(predictor):
    rgb, points = inputs(seed=9)
    predictor.clear_caches()
    _point_net_runs(predictor, rgb, points, "cut", None)
    assert _point_net_runs(predictor, 255 - rgb, points, "cut", None)[0] == 0


def test_point_cache_keeps_its_own_copy_of_the_cloud(colour_predictor):
    """A caller reusing one buffer for every frame must not change what was cached."""
    rgb, points = inputs(seed=10)
    colour_predictor.clear_caches()
    buffer = points.copy()
    _, first = _point_net_runs(colour_predictor, rgb, buffer, "open")
    buffer += 0.05  # the next frame, written into the same array
    assert _point_net_runs(colour_predictor, rgb, buffer, "open")[0] == 1
    buffer -= 0.05
    buffer[:] = points  # the first frame again, bit for bit
    runs, again = _point_net_runs(colour_predictor, rgb, buffer, "open")
    assert runs == 0
    np.testing.assert_array_equal(first.poses, again.poses)


def test_point_cache_is_bounded_and_batches_run_only_their_misses(colour_predictor):
    small = GraspPredictor(colour_predictor.model, device="cpu", point_cache_size=2)
    frames = [inputs(seed=20 + i) for i in range(3)]
    for rgb, points in frames:
        small.predict(rgb, points, "cut", intrinsics=K)
    assert len(small.point_cache) == 2  # the oldest dropped
    calls = small.point_net_calls
    (rgb0, points0), (rgb2, points2) = frames[0], frames[2]
    batch = small.predict_batch([rgb2, rgb0], [points2, points0], ["cut", "cut"], [K, K])
    assert small.point_net_calls == calls + 1  # frame 2 cached, frame 0 evicted
    single = GraspPredictor(colour_predictor.model, device="cpu", point_cache_size=0)
    for got, (rgb, points) in zip(batch, (frames[2], frames[0]), strict=True):
        want = single.predict(rgb, points, "cut", intrinsics=K)
        np.testing.assert_array_equal(got.points, want.points)
        np.testing.assert_allclose(got.contact, want.contact, atol=1e-5)


def test_min_score_keeps_the_best_grasps_scoring_at_least_it(predictor, monkeypatch):
    """The node's score filter: of the ``max_grasps`` best, those scoring ``min_score``."""
    monkeypatch.setattr(predictor.model.cfg.heads, "collision_check", False)
    rgb, points = inputs()
    every = predictor.predict(rgb, points, "hand me the knife", intrinsics=K, max_grasps=8)
    assert len(every.scores) >= 2 and every.scores.min() < every.scores.max()
    threshold = float(np.median(every.scores))
    some = predictor.predict(
        rgb, points, "hand me the knife", intrinsics=K, max_grasps=8, min_score=threshold
    )
    keep = every.scores >= threshold
    assert len(some.scores) == keep.sum() >= 1
    np.testing.assert_array_equal(some.scores, every.scores[keep])
    np.testing.assert_array_equal(some.poses, every.poses[keep])
    np.testing.assert_array_equal(some.contact_points, every.contact_points[keep])
    none = predictor.predict(rgb, points, "hand me the knife", intrinsics=K, min_score=1.01)
    assert none.poses.shape == (0, 4, 4) and none.widths.shape == (0,)


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
        (None, None, "hand me\x00the knife", "control characters"),
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
    absurd = K.copy()
    absurd[0, 0] = 1e30
    with pytest.raises(ValueError, match="fx"):
        pred.predict(rgb, points, "hand me the mug", intrinsics=absurd)
    assert len(pred.predict(rgb, points, "hand me the mug", intrinsics=K).poses) > 0


def _corrupt_clouds(points: np.ndarray) -> dict[str, np.ndarray]:
    """Clouds a sensor never sends but a corrupt message decodes to (finite, absurd)."""
    rng = np.random.default_rng(3)
    one_far = points.copy()
    one_far[7] = 1e20
    largest = points.copy()
    largest[:10] = np.finfo(np.float32).max
    noise = np.frombuffer(rng.bytes(points.size * 4), np.float32).reshape(-1, 3)
    return {
        "one point at 1e20": one_far,
        "float32 max": largest,
        "random bytes": noise,
        "byte-swapped": points.astype(">f4").view("<f4"),
    }


def test_absurd_coordinates_are_rejected_before_the_point_network(predictor):
    rgb, points = inputs(n=5000)
    for name, cloud in _corrupt_clouds(points).items():
        with pytest.raises(ValueError, match="more than 1000 m from the sensor"):
            predictor.predict(rgb, cloud, "hand me the mug")
            pytest.fail(f"{name}: accepted")


@pytest.mark.parametrize(
    "shape",
    ["one point", "a line", "a plane", "two points", "thirty-two points"],
)
def test_degenerate_clouds_give_a_prediction_not_a_crash(predictor, shape):
    rng = np.random.default_rng(4)
    rgb, points = inputs(n=5000)
    line = np.linspace(0.0, 0.5, 5000, dtype=np.float32)
    clouds = {
        "one point": np.tile(points[:1], (5000, 1)),
        "a line": np.stack([line, np.zeros_like(line), np.full_like(line, 0.8)], axis=1),
        "a plane": np.c_[rng.uniform(-0.3, 0.3, (5000, 2)), np.full(5000, 0.8)],
        "two points": np.repeat(points[:2], 2500, axis=0),
        "thirty-two points": points[:32],
    }
    prediction = predictor.predict(rgb, clouds[shape].astype(np.float32), "hand me the mug")
    assert np.isfinite(prediction.contact).all()
    assert np.isfinite(prediction.poses).all() and np.isfinite(prediction.widths).all()


def test_projection_of_overflowing_points_falls_outside_the_image():
    from grasp_semantics.models.fusion import project_to_grid

    points = torch.tensor([[[3e38, -3e38, 3e38], [0.0, 0.0, 1.0]]])
    k = torch.tensor([[[500.0, 0.0, 32.0], [0.0, 500.0, 24.0], [0.0, 0.0, 1.0]]])
    rows, cols, inside = project_to_grid(points, k, (48, 64), (48, 64))
    assert inside.tolist() == [[False, True]]
    assert (rows >= 0).all() and (rows < 48).all() and (cols >= 0).all() and (cols < 64).all()


def test_from_pretrained_directory_and_missing_default(tmp_path, predictor):
    predictor.model.save_pretrained(tmp_path / "ckpt")
    loaded = GraspPredictor.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert loaded.num_points == 256
    if not DEFAULT_WEIGHTS.exists():
        with pytest.raises(FileNotFoundError, match="default weights"):
            GraspPredictor.from_pretrained("default")
    with pytest.raises(FileNotFoundError, match="neither a checkpoint"):
        GraspPredictor.from_pretrained(tmp_path / "nothing")


def test_a_random_backbone_replaces_a_real_flavours_checkpoint(monkeypatch):
    """For benchmarks without the checkpoints: the real architecture, random weights."""
    import grasp_semantics.inference.predictor as predictor_module

    built = []

    def capture(cfg):
        built.append(cfg)
        raise RuntimeError("not built here")  # 3B parameters: only the config is checked

    monkeypatch.setattr(predictor_module, "GraspNet", capture)
    with pytest.raises(RuntimeError, match="not built here"):
        GraspPredictor.from_pretrained("qwen2_5_vl_3b", device="cpu", random_backbone=True)
    backbone = built[0].encoder.backbone
    assert backbone.checkpoint is None and backbone.name == "qwen2_5_vl"
    assert (backbone.text_hidden, backbone.text_layers, backbone.vision_depth) == (2048, 36, 32)
    with pytest.raises(ValueError, match="needs a flavour name"):
        GraspPredictor.from_pretrained("default", random_backbone=True)


def test_bf16_backbone_on_cpu():
    cfg = get_config("debug_qwen3_vl")
    cfg.pointnet.num_points = 128
    pred = GraspPredictor(GraspNet(cfg), device="cpu", dtype=torch.bfloat16)
    assert pred.model.encoder.backbone_dtype() == torch.bfloat16
    assert next(pred.model.heads.parameters()).dtype == torch.float32
    rgb, points = inputs()
    out = pred.predict(rgb, points, "hand me the scissors")
    assert np.isfinite(out.contact).all() and len(out.poses) > 0


def test_warm_up_runs_the_configured_sizes_and_leaves_the_caches_empty(predictor):
    calls = predictor.model.encoder.backbone_calls
    assert predictor.warm_up(runs=1) > 0
    assert predictor.model.encoder.backbone_calls == calls + 1
    assert not predictor.model.encoder._cache and not predictor.point_cache


@pytest.mark.slow
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
    import grasp_semantics.inference.predictor as module

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


def test_a_checkpoint_without_its_heads_is_reported_not_silent(tmp_path, caplog):
    """The shipped model loads with both heads and no warning; a copy without grasp_scorer/
    and describe/ (what a one-level package_data glob shipped) says what it lacks."""
    import shutil

    with caplog.at_level("WARNING", logger="grasp_semantics.inference.predictor"):
        full = GraspPredictor.from_pretrained("default", device="cpu")
    assert full.scorer is not None and full.missing_heads == []
    assert not [r for r in caplog.records if "has no" in r.getMessage()]
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.yaml", "model.safetensors"):
        shutil.copy(DEFAULT_WEIGHTS / name, bare / name)
    caplog.clear()
    with caplog.at_level("WARNING", logger="grasp_semantics.inference.predictor"):
        loaded = GraspPredictor.from_pretrained(bare, device="cpu")
    assert loaded.scorer is None
    assert len(loaded.missing_heads) == 2
    assert "no grasp scorer" in loaded.missing_heads[0]
    assert "no describe head" in loaded.missing_heads[1]
    assert [r.getMessage() for r in caplog.records] == loaded.missing_heads
    without_scorer = GraspPredictor.from_pretrained(bare, device="cpu", scorer=False)
    assert len(without_scorer.missing_heads) == 1  # asked not to rank by it: not missing
