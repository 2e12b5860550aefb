"""How a prediction's cost changes with its input: cloud size, image size, batch size, and
what the encoder's and the point path's caches save."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from grasp_semantics.benchmarks.bench_setup import (
    BATCH_SWEEP,
    IMAGE_SWEEP,
    POINT_SWEEP,
    TARGETS,
    bench_scene,
    scene_inputs,
    synthetic_inputs,
)
from grasp_semantics.benchmarks.stage_timing import (
    collect,
    predict_timed,
    ratio,
    stats,
    time_ms,
)
from grasp_semantics.inference.predictor import GraspPredictor


def sweep_points(predictor: GraspPredictor, timer, quick: bool) -> list[dict]:
    """Cost against the cloud's size on a held-out scene at the camera's full density (every
    point on the table, 225k), uniformly subsampled to each size: as the predictor thins it
    (``max_cloud_points``), and, above that size, keeping every point (the reference)."""
    warmup, runs = (1, 2) if quick else (2, 10)
    chosen = predictor.max_cloud_points
    scene = bench_scene(full_density=True)
    rows = []
    for n in POINT_SWEEP:
        points = scene_inputs(n)[1][0]

        def timed(every_point: bool, points=points) -> dict[str, float]:
            predictor.max_cloud_points = None if every_point else chosen
            try:
                return _stats_of(
                    collect(
                        lambda i: predict_timed(
                            predictor,
                            timer,
                            scene.rgb,
                            points,
                            scene.intrinsics,
                            reuse=("encoder",),
                            instruction=scene.instruction,
                        ),
                        warmup,
                        runs,
                    )
                )
            finally:
                predictor.max_cloud_points = chosen

        row: dict[str, Any] = {"input_points": n, **timed(every_point=False)}
        thinned = chosen is not None and n > chosen
        row["every_point"] = timed(every_point=True) if thinned else None
        rows.append(row)
    return rows


def _stats_of(samples: dict[str, list]) -> dict[str, float]:
    """Median ms of the stages a cloud's size changes."""
    stages = ("point_sampling", "point_net", "decode", "model")
    return {f"{stage}_ms": stats(samples[stage])["median"] for stage in stages}


def sweep_images(predictor, timer, quick: bool) -> list[dict]:
    warmup, runs = (1, 2) if quick else (2, 10)
    rows = []
    for h, w in IMAGE_SWEEP:
        rgb, points, k = synthetic_inputs(h, w)
        s = collect(
            lambda i, rgb=rgb, points=points, k=k: predict_timed(predictor, timer, rgb, points, k),
            warmup,
            runs,
        )
        rows.append(
            {
                "image": [h, w],
                **{
                    f"{stage}_ms": stats(s[stage])["median"]
                    for stage in ("preprocess", "vision_encoder", "language_model", "model")
                },
            }
        )
    return rows


@torch.inference_mode()
def sweep_batches(predictor: GraspPredictor, quick: bool) -> list[dict]:
    """Batched prediction per batch size, and the batched encoder against the seed's
    one-call-per-sample loop on the same images."""
    warmup, runs = (0, 1) if quick else (1, 5)
    rgb, (points,), k, instruction = scene_inputs()
    encoder = predictor.model.encoder
    rows = []
    for b in BATCH_SWEEP:
        images = [np.roll(rgb, 7 * i, axis=1) for i in range(b)]
        texts = [instruction] * b

        def batch_once(i: int, images=images, texts=texts, b=b) -> dict[str, float]:
            predictor.clear_caches()
            preds = predictor.predict_batch(images, [points] * b, texts, [k] * b)
            return {"model": preds[0].timings["total"]}

        s = collect(batch_once, warmup, runs)
        image_t = torch.from_numpy(np.stack(images))[:, None].to(predictor.device)
        repeats = 1 if quick else 3
        per_sample = time_ms(
            lambda image_t=image_t, texts=texts: [
                encoder(image_t[i : i + 1], texts[i : i + 1]) for i in range(len(texts))
            ],
            repeats,
        )
        batched = time_ms(lambda image_t=image_t, texts=texts: encoder(image_t, texts), repeats)
        model_ms = stats(s["model"])["median"]
        rows.append(
            {
                "batch": b,
                "model_ms": model_ms,
                "per_sample_ms": round(model_ms / b, 3),
                "throughput_hz": round(1000.0 * b / model_ms, 2),
                "encoder_per_sample_calls": ratio(per_sample, batched),
            }
        )
    return rows


def cached_vs_uncached(predictor, timer, quick: bool) -> dict:
    """Model calls with nothing cached; with the encoder's output cached (same image and
    instruction, a new cloud each run); with the point path's (same image and cloud, the
    encoder rerun, as for a new instruction). From the uncached runs: ``rest_ms``, the median
    of each call without its encoder stage (what a call with a cached encoder still pays);
    ``bound``, the median of each call over its rest (the speed-up of a cached encoder that
    cost nothing: what no encoder cache can beat on this model and machine); and
    ``rest_for_target_ms``, how short the rest would have to be for the cached-path target."""
    warmup, runs = (1, 3) if quick else (3, 20)
    rgb, clouds, k, instruction = scene_inputs(clouds=4)
    result: dict[str, Any] = {}
    for name, reuse, new_cloud in (
        ("uncached", (), True),
        ("cached", ("encoder",), True),
        ("points_cached", ("points",), False),
    ):
        s = collect(
            lambda i, reuse=reuse, new_cloud=new_cloud: predict_timed(
                predictor,
                timer,
                rgb,
                clouds[i % len(clouds) if new_cloud else 0],
                k,
                reuse=reuse,
                instruction=instruction,
            ),
            warmup,
            runs,
        )
        result[f"{name}_ms"] = stats(s["model"])
        result[f"{name}_encoder_ms"] = stats(s["encoder"])["median"]
        if name == "uncached":
            model, encoder = np.array(s["model"]), np.array(s["encoder"])
            result["rest_ms"] = round(float(np.median(model - encoder)), 3)
            result["bound"] = round(float(np.median(model / (model - encoder))), 2)
            goal = TARGETS["cached_speedup"][0]
            result["rest_for_target_ms"] = round(result["uncached_encoder_ms"] / (goal - 1), 3)
    uncached = result["uncached_ms"]["median"]
    result["speedup"] = round(uncached / result["cached_ms"]["median"], 2)
    result["points_cached_speedup"] = round(uncached / result["points_cached_ms"]["median"], 2)
    return result
