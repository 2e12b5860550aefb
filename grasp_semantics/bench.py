"""Inference benchmark: per-stage latency and peak memory of the predictor, and FPS speed.

``run_bench`` feeds a synthetic 640x480 image and a 20,000-point cloud through
:class:`~grasp_semantics.predictor.GraspPredictor` and reports the median and p95 of each
stage over warm runs (the encoder cache is cleared before every run, so the backbone runs each
time), the process's peak RSS (and peak CUDA memory on a GPU), and farthest point sampling of
20,000 → 2,048 points: the vectorised sampler against the loop reference.
``main(argv)`` prints the result as JSON (the ``grasp-semantics bench`` command).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .models.pointnet2 import _fpsample, farthest_point_sample, fps_reference, fps_torch
from .predictor import GraspPredictor

STAGES = ("preprocess", "encoder", "point_sampling", "point_net", "heads", "decode", "total")


def synthetic_inputs(height: int = 480, width: int = 640, n_points: int = 20_000, seed: int = 0):
    """A textured image, a table-top-like cloud in front of the camera and its intrinsics."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    xy = rng.uniform(-0.3, 0.3, (n_points, 2))
    z = 0.7 + 0.05 * np.sin(8 * xy[:, :1]) + rng.normal(0, 0.002, (n_points, 1))
    points = np.concatenate([xy, z], axis=1).astype(np.float32)
    k = np.array([[600.0, 0, width / 2], [0, 600.0, height / 2], [0, 0, 1]], dtype=np.float32)
    return rgb, points, k


def _stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {
        "median": round(float(np.median(arr)), 3),
        "p95": round(float(np.percentile(arr, 95)), 3),
    }


def _time_ms(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return round(1000.0 * best, 3)


def bench_fps(n: int = 20_000, k: int = 2048, device: str = "cpu", quick: bool = False) -> dict:
    """Milliseconds (best of a few) of FPS n → k: loop reference vs vectorised samplers."""
    pts = np.random.default_rng(1).uniform(-0.5, 0.5, (n, 3)).astype(np.float32)
    xyz = torch.from_numpy(pts)[None].to(device)
    repeats = 1 if quick else 3
    result = {
        "n_points": n,
        "n_samples": k,
        "reference_loop_ms": _time_ms(lambda: fps_reference(pts, k), 1),
        "torch_vectorised_ms": _time_ms(lambda: fps_torch(xyz, k), repeats),
    }
    if _fpsample is not None:  # the predictor's sampler (a set), and the same put in FPS order
        cpu = xyz.cpu()
        result["fpsample_ms"] = _time_ms(
            lambda: farthest_point_sample(cpu, k, use_fpsample=True, ordered=False), repeats
        )
        result["fpsample_ordered_ms"] = _time_ms(
            lambda: farthest_point_sample(cpu, k, use_fpsample=True, ordered=True), repeats
        )
    used = "fpsample_ms" if "fpsample_ms" in result and device == "cpu" else "torch_vectorised_ms"
    result["used"] = used.removesuffix("_ms")
    result["speedup_vs_reference"] = round(result["reference_loop_ms"] / result[used], 1)
    return result


def run_bench(model: str = "tiny", device: str = "cpu", quick: bool = False) -> dict:
    """Benchmark dict: stage latencies (ms, median / p95), memory, FPS timings, settings."""
    torch.manual_seed(0)
    predictor = GraspPredictor.from_pretrained(model, device=device)
    rgb, points, k = synthetic_inputs()
    needs_k = predictor.model.cfg.fusion.mode == "pixel_aligned"
    warmup, runs = (1, 3) if quick else (3, 20)
    samples: dict[str, list[float]] = {s: [] for s in STAGES}
    for i in range(warmup + runs):
        predictor.model.encoder.clear_cache()
        pred = predictor.predict(rgb, points, "hand me the knife by its handle",
                                 intrinsics=k if needs_k else None)  # fmt: skip
        if i >= warmup:
            for stage in STAGES:
                samples[stage].append(pred.timings.get(stage, 0.0))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    memory = {"peak_rss_mb": round(peak_rss_mb, 1)}
    if predictor.device.type == "cuda":
        memory["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return {
        "model": model,
        "device": str(predictor.device),
        "image": [480, 640],
        "input_points": len(points),
        "network_points": predictor.num_points,
        "warm_runs": runs,
        "latency_ms": {stage: _stats(v) for stage, v in samples.items()},
        "memory": memory,
        "fps": bench_fps(device=str(predictor.device), quick=quick),
        "parameters_m": round(sum(p.numel() for p in predictor.model.parameters()) / 1e6, 3),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }


def add_arguments(parser: argparse.ArgumentParser, command: str = "bench") -> None:
    parser.add_argument("--model", default="default", help="model name or checkpoint dir")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--quick", action="store_true", help="few runs (smoke test)")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="OUT",
        help="also write the JSON to OUT (it is always printed)",
    )


def run(args: argparse.Namespace, command: str = "bench") -> int:
    result = run_bench(args.model, args.device, args.quick)
    text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")
    if args.json and args.json != "-":
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``grasp-semantics bench [--model default] [--device cpu] [--quick] [--json [OUT]]``."""
    parser = argparse.ArgumentParser(prog="grasp-semantics bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(list(argv) if argv is not None else None))


if __name__ == "__main__":
    raise SystemExit(main())
