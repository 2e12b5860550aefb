"""Each fast path against its reference, timed side by side in the same run: farthest point
sampling, the point network, decoding's BLAS threads and the grasp scorer's features and cost."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from grasp_semantics.benchmarks.bench_setup import bench_scene
from grasp_semantics.benchmarks.stage_timing import ratio, time_ms
from grasp_semantics.data.scene import Scene
from grasp_semantics.inference.predictor import GraspPredictor
from grasp_semantics.models.pointnet2 import (
    _fpsample,
    farthest_point_sample,
    fps_exact,
    fps_reference,
    fps_torch,
)


def bench_fps(n: int = 20_000, k: int = 2048, device: str = "cpu", quick: bool = False) -> dict:
    """Milliseconds (best of a few) of FPS n → k: loop reference vs vectorised samplers."""
    pts = np.random.default_rng(1).uniform(-0.5, 0.5, (n, 3)).astype(np.float32)
    xyz = torch.from_numpy(pts)[None].to(device)
    repeats = 1 if quick else 3
    result = {
        "n_points": n,
        "n_samples": k,
        "reference_loop_ms": time_ms(lambda: fps_reference(pts, k), 1),
        "torch_vectorised_ms": time_ms(lambda: fps_torch(xyz, k), repeats),
    }
    if _fpsample is not None:  # the predictor's sampler (a set), and the same put in FPS order
        cpu = xyz.cpu()
        result["fpsample_ms"] = time_ms(
            lambda: farthest_point_sample(cpu, k, use_fpsample=True, ordered=False), repeats
        )
        result["fpsample_ordered_ms"] = time_ms(
            lambda: farthest_point_sample(cpu, k, use_fpsample=True, ordered=True), repeats
        )
    used = "fpsample_ms" if "fpsample_ms" in result and device == "cpu" else "torch_vectorised_ms"
    result["used"] = used.removesuffix("_ms")
    result["speedup_vs_reference"] = round(result["reference_loop_ms"] / result[used], 1)
    return result


def network_inputs(predictor: GraspPredictor, rgb, points, k):
    """The point network's inputs for one sample: sampled xyz [1, M, 3] and features."""
    xyz = torch.from_numpy(predictor.sample_points(points))[None].to(predictor.device)
    image = torch.from_numpy(rgb)[None, None].to(predictor.device)
    k_t = torch.from_numpy(k)[None].to(predictor.device)
    return xyz, predictor.model.point_inputs(xyz, image, k_t), image, k_t


def _model_call_ms(predictor: GraspPredictor, scene: Scene, runs: int) -> float:
    """Median ms of ``runs`` consecutive uncached model calls (after one warm-up): back to
    back, so what one call leaves running (spinning threads) slows the next, as on a robot."""
    times = []
    for _ in range(runs + 1):
        predictor.clear_caches()
        start = time.perf_counter()
        predictor.predict(scene.rgb, scene.points, scene.instruction, intrinsics=scene.intrinsics)
        times.append(1000.0 * (time.perf_counter() - start))
    return round(float(np.median(times[1:])), 3)


def bench_decode_threads(predictor: GraspPredictor, quick: bool) -> dict:
    """Model calls with decoding on numpy's default BLAS threads (reference) and on one, on a
    generated held-out scene (its 40,000-point cloud, as the data set has it)."""
    scene = bench_scene()
    runs = 2 if quick else 15
    chosen = predictor.decode_blas_threads
    try:
        predictor.decode_blas_threads = None
        reference = _model_call_ms(predictor, scene, runs)
        predictor.decode_blas_threads = 1
        fast = _model_call_ms(predictor, scene, runs)
    finally:
        predictor.decode_blas_threads = chosen
    return ratio(reference, fast)


def bench_scorer_cost(predictor: GraspPredictor, quick: bool) -> dict | None:
    """Model calls on a generated held-out scene with the planned grasps ranked by the
    planner's quality and by the grasp scorer (its features and MLP are the difference); None
    for a model without a scorer."""
    if predictor.scorer is None:
        return None
    scene = bench_scene()
    runs = 2 if quick else 15
    scorer = predictor.scorer
    try:
        predictor.scorer = None
        planner = _model_call_ms(predictor, scene, runs)
    finally:
        predictor.scorer = scorer
    scored = _model_call_ms(predictor, scene, runs)
    return {
        "planner_ranking_ms": planner,
        "scorer_ranking_ms": scored,
        "added_ms": round(scored - planner, 3),
        "features": _scorer_features(predictor, scene, 2 if quick else 7),
    }


def _scorer_features(predictor: GraspPredictor, scene: Scene, repeats: int) -> dict[str, float]:
    """The scorer's features of every part planned on ``scene`` (from the model's own contact
    predictions, as a model call plans them): straightforward reference vs fast."""
    from grasp_semantics.grasping.part_planning import collision_free_parts
    from grasp_semantics.grasping.scorer_features import gripper_view, gripper_view_reference

    heads = predictor.model.cfg.heads
    got = predictor.predict(scene.rgb, scene.points, scene.instruction, scene.intrinsics)
    cloud = predictor.thin_cloud(scene.points)
    plans = list(
        collision_free_parts(
            got.points,
            got.contact,
            cloud,
            heads.part_grasps,
            predictor.gripper,
            heads.collision_tolerance,
        )
    )
    scorer = predictor.scorer
    assert scorer is not None

    def features(view: Callable) -> Callable[[], list]:
        return lambda: [view(p, scorer.cfg, scorer.max_width) for p in plans]

    reference = time_ms(features(gripper_view_reference), repeats)
    return ratio(reference, time_ms(features(gripper_view), repeats))


@torch.inference_mode()
def bench_references(predictor: GraspPredictor, rgb, points, k, quick: bool) -> dict:
    """Each fast path against its reference, timed side by side (best of a few runs)."""
    repeats = 2 if quick else 7
    xyz, feats, _, _ = network_inputs(predictor, rgb, points, k)
    net = predictor.model.pointnet
    first = net.cfg.sa[0].npoint
    return {
        "fps_20k_to_2048": bench_fps(device=str(predictor.device), quick=quick),
        "fps_exact_2048_to_512": ratio(
            time_ms(lambda: fps_torch(xyz, first), repeats),
            time_ms(lambda: fps_exact(xyz, first), repeats),
        ),
        "point_net": ratio(
            time_ms(lambda: net(xyz, feats, reference=True), repeats),
            time_ms(lambda: net(xyz, feats), repeats),
        ),
        "decode_blas_threads": bench_decode_threads(predictor, quick),
    }
