"""How the benchmark times a prediction: wall-clock helpers, the encoder's parts timed by
forward hooks, and one prediction's per-stage timings (through the ROS messages when given)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grasp_semantics.benchmarks.bench_setup import INSTRUCTION
from grasp_semantics.inference.predictor import GraspPredictor


def stats(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "median": round(float(np.median(arr)), 3),
        "p95": round(float(np.percentile(arr, 95)), 3),
    }


def time_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Best of ``repeats`` wall-clock runs, in ms (the least disturbed run)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return round(1000.0 * best, 3)


def rss_mb() -> float:
    """The process's resident memory now (Linux /proc), else its peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EncoderStageTimer:
    """Times the encoder's parts (ms, summed per prediction): ``encoder_inputs`` (tokenising,
    resizing and patchifying: :meth:`QwenSemanticsEncoder.pack`), the backbone's vision tower
    and language model (forward hooks); ``projection`` is the rest of the encoder stage (the
    cache key, norm, pooling and projection heads)."""

    PARTS = ("encoder_inputs", "vision_encoder", "language_model")

    def __init__(self, predictor: GraspPredictor) -> None:
        encoder = predictor.model.encoder
        backbone = encoder.backbone
        base = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone
        self.device = predictor.device
        self.ms = dict.fromkeys(self.PARTS, 0.0)
        self._start: dict[str, float] = {}
        for stage, module in (
            ("vision_encoder", base.visual),
            ("language_model", base.language_model),
        ):
            module.register_forward_pre_hook(self._pre(stage))
            module.register_forward_hook(self._post(stage))
        pack = encoder.pack

        def timed_pack(*args, **kwargs):
            self._pre("encoder_inputs")(None, args)
            out = pack(*args, **kwargs)
            self._post("encoder_inputs")(None, args, out)
            return out

        encoder.pack = timed_pack  # this instance only

    def _pre(self, stage: str):
        def hook(module, args):
            _sync(self.device)
            self._start[stage] = time.perf_counter()

        return hook

    def _post(self, stage: str):
        def hook(module, args, output):
            _sync(self.device)
            self.ms[stage] += 1000.0 * (time.perf_counter() - self._start[stage])

        return hook

    def take(self) -> dict[str, float]:
        """The time accumulated since the last call, and a reset."""
        out, self.ms = self.ms, dict.fromkeys(self.PARTS, 0.0)
        return out


def message_stages(rgb: np.ndarray, points: np.ndarray, k: np.ndarray) -> Any:
    """ROS message stages for these inputs, or None where ROS is not installed."""
    try:
        from grasp_semantics.ros.node_bench import MessageStages
    except ImportError:
        return None
    return MessageStages(rgb, points, k)


def predict_timed(
    predictor: GraspPredictor,
    timer: EncoderStageTimer,
    rgb: np.ndarray,
    points: np.ndarray,
    k: np.ndarray,
    messages: Any = None,
    reuse: tuple[str, ...] = (),
    instruction: str = INSTRUCTION,
) -> dict[str, float]:
    """One prediction's stage timings (ms); through the ROS messages when given. ``reuse``:
    the caches kept from earlier calls ("encoder", "points"), the others cleared first."""
    if "encoder" not in reuse:
        predictor.model.encoder.clear_cache()
    if "points" not in reuse:
        predictor.point_cache.clear()
    t: dict[str, float] = {}
    if messages is not None:
        start = time.perf_counter()
        rgb, points, k = messages.convert()
        t["ros_conversion"] = 1000.0 * (time.perf_counter() - start)
    timer.take()
    pred = predictor.predict(rgb, points, instruction, intrinsics=k)
    t.update(pred.timings)
    t.update(timer.take())
    parts = sum(t[part] for part in EncoderStageTimer.PARTS)
    t["projection"] = max(0.0, t["encoder"] - parts)
    t["model"] = t.pop("total")
    if messages is not None:
        start = time.perf_counter()
        messages.build(pred)
        t["message_building"] = 1000.0 * (time.perf_counter() - start)
    t["end_to_end"] = t["model"] + t.get("ros_conversion", 0.0) + t.get("message_building", 0.0)
    return t


def collect(fn: Callable[[int], dict[str, float]], warmup: int, runs: int) -> dict[str, list]:
    samples: dict[str, list[float]] = {}
    for i in range(warmup + runs):
        t = fn(i)
        if i >= warmup:
            for stage, ms in t.items():
                samples.setdefault(stage, []).append(ms)
    return samples


def ratio(reference_ms: float, fast_ms: float) -> dict[str, float]:
    return {
        "reference_ms": reference_ms,
        "fast_ms": fast_ms,
        "speedup": round(reference_ms / max(fast_ms, 1e-9), 2),
    }
