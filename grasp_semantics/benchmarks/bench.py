"""Inference benchmark: per-stage latency, how cost grows with the input, and memory.

``run_bench`` runs, in one process, on a generated held-out table-top scene (its 640x480
image, instruction and intrinsics, and 20,000 points drawn from its cloud at the camera's full
density: a new draw is a new cloud of the same view), so that grasp planning and the grasp
scorer run as on a robot:

- **stages**: median and p95 over warm runs of ROS message conversion, preprocess, vision
  encoder, language model, projection, point sampling, point network, heads, grasp decoding
  and message building (the caches cleared before each run, so everything runs);
- **cached vs uncached**: the same image and instruction with a new cloud each run (the encoder's
  cache), and the same image and cloud with the encoder rerun (the point path's cache), each
  against nothing cached; with the bound on the first: the speed-up if a cached encoder cost
  nothing at all;
- **sweeps**: input points (5k-200k drawn from the same scene, also without thinning above
  ``max_cloud_points``), image size (320x240-1280x720, a synthetic textured image over a
  wavy surface: the scenes are rendered at 640x480 only), batch size (1, 4, 8);
- **references** beside every claimed speed-up, timed in the same run: the loop FPS, the
  textbook set abstraction, the seed's one-call-per-sample encoder, decoding on numpy's
  default BLAS threads;
- **memory**: peak RSS (and CUDA memory on a GPU), and RSS over a soak of consecutive
  predictions;
- **FLOPs** of every stage for the bench model and the real backbones, and the H100 bound;
- **scene questions**: a caption, OCR and VQA answer through the describe head that shares the
  grasp backbone (the node's ``~/describe`` service path), run last.

Timings are wall-clock ``time.perf_counter`` (CUDA synchronised per stage). The ROS stages run
when ``rclpy`` and the messages are importable (:mod:`grasp_semantics.ros.node_bench`), else they
are ``null``. ``main(argv)`` prints the JSON (``grasp-semantics bench``) and writes the JSON and
a markdown summary when asked.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from grasp_semantics.benchmarks import flops
from grasp_semantics.benchmarks.bench_report import markdown
from grasp_semantics.benchmarks.bench_setup import (
    BENCH_SCENE_SEED,
    INSTRUCTION,
    TARGETS,
    bench_scene,
    camera_inputs,
    scene_inputs,
)
from grasp_semantics.benchmarks.input_sweeps import (
    cached_vs_uncached,
    sweep_batches,
    sweep_images,
    sweep_points,
)
from grasp_semantics.benchmarks.reference_timings import (
    bench_references,
    bench_scorer_cost,
    network_inputs,
)
from grasp_semantics.benchmarks.stage_timing import (
    EncoderStageTimer,
    collect,
    message_stages,
    predict_timed,
    rss_mb,
    stats,
)
from grasp_semantics.inference.predictor import GraspPredictor
from grasp_semantics.models.config import REAL_FLAVOURS

SCHEMA = "grasp_semantics.benchmarks.bench/6"
STAGES = (
    "ros_conversion",
    "preprocess",
    "encoder_inputs",
    "vision_encoder",
    "language_model",
    "projection",
    "point_sampling",
    "point_net",
    "heads",
    "decode",
    "message_building",
    "model",
    "end_to_end",
)


def soak(predictor: GraspPredictor, predictions: int) -> dict:
    """RSS over ``predictions`` consecutive predictions cycling 12 images (more than the
    encoder cache holds) and 4 clouds (12 pairs, more than the point cache holds); growth is
    measured from the end of the first tenth."""
    rgb, clouds, k, instruction = scene_inputs(clouds=4)
    images = [np.roll(rgb, 5 * i, axis=0) for i in range(12)]
    warm = max(1, predictions // 10)
    start = None
    trace = []
    for i in range(predictions):
        predictor.predict(images[i % 12], clouds[i % 4], instruction, intrinsics=k)
        if i + 1 == warm:
            gc.collect()
            start = rss_mb()
        if (i + 1) % max(1, predictions // 10) == 0:
            trace.append(round(rss_mb(), 1))
    gc.collect()
    end = rss_mb()
    return {
        "predictions": predictions,
        "rss_after_warmup_mb": round(start, 1),
        "rss_end_mb": round(end, 1),
        "rss_trace_mb": trace,
        "growth_pct": round(100.0 * (end - start) / start, 3),
    }


DESCRIBE_REQUESTS = (
    ("caption", ""),
    ("ocr", ""),
    ("vqa", "How many objects are on the table?"),
)


def bench_describe(predictor: GraspPredictor, model: str, quick: bool) -> dict | None:
    """The ``~/describe`` service's path (``describe.describe``, greedy) on the bench scene's
    image, per task: median and p95 ms of an answer, and the answer; with the RSS that
    attaching the describe head to the loaded grasp model added (its adapters and output
    layer: the backbone is shared, not copied). Run last: the head's hooks stay on the
    backbone until it is closed. None for a model without a describe head."""
    from grasp_semantics.data.questions import corpus
    from grasp_semantics.inference.scene_questions import attach_describer, describe

    warmup, runs = (1, 2) if quick else (2, 10)
    before = rss_mb()
    try:
        describer = attach_describer(predictor.model, model, corpus())
    except FileNotFoundError:
        return None
    added = rss_mb() - before
    rgb = bench_scene(full_density=True).rgb
    tasks = {}
    try:
        for task, prompt in DESCRIBE_REQUESTS:
            times, answer = [], None
            for i in range(warmup + runs):
                answer = describe(describer, rgb, task, prompt)
                if i >= warmup:
                    times.append(sum(answer.timings.values()))
            tasks[task] = {
                **stats(times),
                "prompt": answer.prompt,
                "answer": answer.answer,
                "confidence": round(answer.confidence, 3),
            }
    finally:
        describer.close()
    return {"tasks": tasks, "rss_added_mb": round(added, 1)}


@torch.inference_mode()
def bench_node(model: str, device: str, quick: bool) -> dict:
    """The node's own prediction latency on the demo bag beside the predictor's called directly
    on the same scenes, in this run (:func:`grasp_semantics.ros.node_bench.bench_node`)."""
    from grasp_semantics.ros.node_bench import bench_node as run_node

    raw = run_node(model, device, scenes=2 if quick else 6, repeats=1 if quick else 2)
    direct, node = (
        {**stats(ms), "n": len(ms)} for ms in (raw.pop("direct_ms"), raw.pop("node_ms"))
    )
    return {
        **raw,
        "direct_ms": direct,
        "node_ms": node,
        "node_over_direct": round(node["median"] / direct["median"], 3),
    }


def point_stage_flops(predictor: GraspPredictor, rgb, points, k) -> dict[str, float]:
    """FLOPs (matmuls) of the point network and of fusion + heads, counted on a real run."""
    xyz, feats, _, k_t = network_inputs(predictor, rgb, points, k)
    with FlopCounterMode(display=False) as counter:
        point_feats = predictor.model.point_features(xyz, feats)
    point_net = counter.get_total_flops()
    enc = predictor.model.encode(torch.from_numpy(rgb)[None, None], [INSTRUCTION], cached=True)
    with FlopCounterMode(display=False) as counter:
        predictor.model.fuse_and_predict(xyz, point_feats, enc, rgb.shape[:2], k_t)
    return {"point_net": float(point_net), "heads": float(counter.get_total_flops())}


@torch.inference_mode()
def bench_flops(predictor: GraspPredictor, model: str, rgb, points, k) -> dict:
    """Per-stage FLOPs and H100 bounds: the bench model and the real backbones; for the bench
    model, the analytic encoder count beside torch's FLOP counter on a real forward."""
    encoder = predictor.model.encoder
    prompt_ids = encoder.tokenizer(encoder._prompt(INSTRUCTION, 1))["input_ids"]
    text_tokens = len(prompt_ids) - encoder.grid_hw[0] * encoder.grid_hw[1]
    points_flops = point_stage_flops(predictor, rgb, points, k)
    name = predictor.model.cfg.name
    report = {"h100": flops.H100, "text_tokens": text_tokens, "flavours": {}}
    report["flavours"][model] = flops.flavour_report(
        name, text_tokens, points_flops, predictor.model.cfg
    )
    for flavour in REAL_FLAVOURS:
        if flavour != model:
            report["flavours"][flavour] = flops.flavour_report(flavour, text_tokens, points_flops)
    if name not in REAL_FLAVOURS or predictor.device.type == "cuda":  # where it runs fast
        with FlopCounterMode(display=False) as counter:
            encoder(torch.from_numpy(rgb)[None, None].to(predictor.device), [INSTRUCTION])
        bcfg = predictor.model.cfg.encoder.backbone
        counts = flops.encoder_counts(flops.dims_of(bcfg), tuple(bcfg.image_size), text_tokens)
        detail = counts.pop("_detail")
        analytic = sum(c["flops"] for c in counts.values())
        report["check"] = {
            "flop_counter_gflops": round(counter.get_total_flops() / 1e9, 4),
            "analytic_gflops": round(analytic / 1e9, 4),
            # torch's counter has no formula for the CPU SDPA kernel: compare without it
            "analytic_without_attention_scores_gflops": round(
                (analytic - detail["attention_score_flops"]) / 1e9, 4
            ),
        }
    return report


def _targets(result: dict) -> dict:
    lat = result["latency_ms"]
    values = {
        "end_to_end_median_ms": lat["end_to_end"]["median"],
        "ros_messages_median_ms": (
            None
            if result["ros"] is None
            else round(lat["ros_conversion"]["median"] + lat["message_building"]["median"], 3)
        ),
        "cached_speedup": result["cached"]["speedup"],
        "fps_speedup": result["references"]["fps_20k_to_2048"]["speedup_vs_reference"],
        "soak_rss_growth_pct": None if result["soak"] is None else result["soak"]["growth_pct"],
    }
    out = {}
    for name, (goal, kind) in TARGETS.items():
        value = values[name]
        met = None
        if value is not None:
            met = (
                abs(value) <= goal
                if name == "soak_rss_growth_pct"
                else (value <= goal if kind == "max" else value >= goal)
            )
        out[name] = {"value": value, "goal": goal, "kind": kind, "met": met}
    return out


def _machine(predictor: GraspPredictor) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover - not Linux
        pass
    machine = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(predictor.device),
    }
    if predictor.device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(predictor.device)
    if hasattr(os, "getloadavg"):  # other work on the machine shows here: ~0 when idle
        machine["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
    return machine


def run_bench(
    model: str = "default",
    device: str = "cpu",
    quick: bool = False,
    compile: bool = False,
    soak_predictions: int | None = None,
    sweeps: bool = True,
    random_backbone: bool = False,
    node: bool = True,
) -> dict:
    """The benchmark as a JSON-able dict (see the module docstring). ``random_backbone``: a
    real flavour's backbone with random weights at its published sizes (no checkpoint).
    ``node``: also time the real node on the demo bag (where ROS is installed)."""
    torch.manual_seed(0)
    predictor = GraspPredictor.from_pretrained(
        model, device=device, compile=compile, random_backbone=random_backbone
    )
    timer = EncoderStageTimer(predictor)
    warmup, runs = (1, 3) if quick else (3, 20)
    rgb, cloud, k, instruction = camera_inputs()
    points = cloud.reshape(-1, 3)  # what the predictor gets without ROS (non-finite dropped)
    messages = message_stages(rgb, cloud, k)
    if predictor.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(predictor.device)
    samples = collect(
        lambda i: predict_timed(
            predictor, timer, rgb, points, k, messages, instruction=instruction
        ),
        warmup,
        runs,
    )
    memory = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if predictor.device.type == "cuda":
        memory["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    latency = {stage: stats(samples[stage]) for stage in STAGES if stage in samples}
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "command": None,  # set by the CLI
        "machine": _machine(predictor),
        "settings": {
            "model": model,
            "random_backbone": random_backbone,
            "dtype": str(predictor.model.encoder.backbone_dtype()).removeprefix("torch."),
            "compile": compile,
            "input": f"held-out scene {BENCH_SCENE_SEED} (test_instance): {instruction!r}",
            "image": list(rgb.shape[:2]),
            "encoder_image": list(predictor.model.cfg.encoder.backbone.image_size),
            "input_points": int(np.isfinite(points).all(axis=1).sum()),
            "input_cloud": f"organised {cloud.shape[1]}x{cloud.shape[0]}, NaN where no return",
            "network_points": predictor.num_points,
            "max_cloud_points": predictor.max_cloud_points,
            "warm_runs": runs,
            "quick": quick,
        },
        "ros": None if messages is None else {"messages": "rclpy"},
        "latency_ms": latency,
        "throughput_hz": round(1000.0 / latency["end_to_end"]["median"], 2),
        "memory": memory,
        "cached": cached_vs_uncached(predictor, timer, quick),
        "references": bench_references(predictor, rgb, scene_inputs()[1][0], k, quick),
        "grasp_scorer": bench_scorer_cost(predictor, quick),
        "sweeps": None,
        "soak": None,
        "flops": bench_flops(predictor, model, rgb, points[np.isfinite(points).all(axis=1)], k),
        "parameters_m": round(sum(p.numel() for p in predictor.model.parameters()) / 1e6, 3),
    }
    if sweeps:
        result["sweeps"] = {
            "points": sweep_points(predictor, timer, quick),
            "image": sweep_images(predictor, timer, quick),
            "batch": sweep_batches(predictor, quick),
        }
    n_soak = soak_predictions if soak_predictions is not None else (30 if quick else 1000)
    if n_soak > 0:
        result["soak"] = soak(predictor, n_soak)
    result["node"] = bench_node(model, device, quick) if node and messages is not None else None
    result["describe"] = bench_describe(predictor, model, quick)
    result["targets"] = _targets(result)
    if hasattr(os, "getloadavg"):
        result["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    return result


def add_arguments(parser: argparse.ArgumentParser, command: str = "bench") -> None:
    parser.add_argument("--model", default="default", help="model name or checkpoint dir")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--quick", action="store_true", help="few runs (smoke test)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument(
        "--random-backbone",
        action="store_true",
        help="a real flavour's backbone with random weights at its published sizes",
    )
    parser.add_argument(
        "--soak", type=int, default=None, help="predictions in the memory soak (0: none)"
    )
    parser.add_argument("--no-sweeps", action="store_true", help="skip the input-size sweeps")
    parser.add_argument(
        "--no-node", action="store_true", help="skip the real node on the demo bag"
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="OUT",
        help="also write the JSON to OUT (it is always printed)",
    )
    parser.add_argument("--markdown", metavar="OUT", help="write a markdown summary to OUT")


def run(args: argparse.Namespace, command: str = "bench") -> int:
    result = run_bench(
        args.model,
        args.device,
        args.quick,
        args.compile,
        args.soak,
        not args.no_sweeps,
        args.random_backbone,
        not args.no_node,
    )
    flags = [f"--model {args.model}", f"--device {args.device}"]
    flags += [f"--{name}" for name in ("quick", "compile") if getattr(args, name)]
    flags += ["--random-backbone"] if args.random_backbone else []
    flags += ["--no-sweeps"] if args.no_sweeps else []
    flags += ["--no-node"] if args.no_node else []
    flags += [f"--soak {args.soak}"] if args.soak is not None else []
    flags += [f"--json {args.json}"] if args.json and args.json != "-" else []
    flags += [f"--markdown {args.markdown}"] if args.markdown else []
    result["command"] = "grasp-semantics bench " + " ".join(flags)
    text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")
    if args.json and args.json != "-":
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(markdown(result) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``grasp-semantics bench [--model default] [--device cpu] [--quick] [--json [OUT]]
    [--markdown OUT]``."""
    parser = argparse.ArgumentParser(prog="grasp-semantics bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(list(argv) if argv is not None else None))


if __name__ == "__main__":
    raise SystemExit(main())
