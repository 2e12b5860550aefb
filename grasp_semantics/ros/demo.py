"""The main job: the sample bag through the real node with the shipped model, scored.

    grasp-semantics demo [--out outputs/demo] [--model default] [--scenes 6]

1. Makes the sample bag (``make-bag`` of held-out-instance scenes with a fixed seed) unless it
   exists: image, camera_info, cloud, instruction and ground-truth topics.
2. Replays it through a ``grasp_semantics`` node over real topics (``replay``), recording the
   node's outputs to ``predictions_bag/``.
3. Scores every prediction against the bag's ground truth: contact AP / IoU and part accuracy
   from the ground-truth cloud, grasp success@1 / @5 against the scene geometry (the scene is
   regenerated from the seed the bag records), exactly as ``evaluate`` does.
4. Writes a PNG per scene (image, the points the model saw coloured by contact probability,
   the best grasps) and ``summary.json``, with the machine it ran on and, per scene, how close
   its part choice came to the other answer (``part_margin``): six scenes are few, and a scene
   whose margin is small can change its answer on another machine (docs/model_card.md).
5. With ``--jitter K``, predicts again (directly, the node's settings) on K copies of each
   cloud with every coordinate moved by at most one float32 step, as another CPU's renderer
   may hand the node the same scene, and reports the range of each scene's margin and the
   scenes whose part choice changed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from grasp_semantics.data.bag import read_bag, write_bag
from grasp_semantics.data.scene import generate_scene
from grasp_semantics.evaluation.drawing import save_prediction_png
from grasp_semantics.evaluation.evaluate import Scored, point_labels, score_scene
from grasp_semantics.evaluation.metrics import mean_metrics
from grasp_semantics.models.config import GripperConfig
from grasp_semantics.ros.conversions import cloud_fields
from grasp_semantics.ros.messages import pose_matrix
from grasp_semantics.ros.replay import replay

SAMPLE_SEED = 20261123
SAMPLE_SPLIT = "test_instance"


def make_sample_bag(path: Path, scenes: int, seed: int = SAMPLE_SEED) -> Path:
    """The deterministic sample bag: ``scenes`` held-out-instance scenes from ``seed``."""
    return write_bag(path, (generate_scene(seed + i, SAMPLE_SPLIT) for i in range(scenes)))


def score_prediction(message: Any, truth: dict[str, Any], gripper: GripperConfig) -> dict:
    """Metrics of one GraspPrediction against the ground truth read back from the bag."""
    fields = cloud_fields(message.contacts, ("x", "y", "z", "contact"))
    points = np.stack([fields[a] for a in "xyz"], axis=1).astype(np.float32)
    poses = np.array([pose_matrix(g.pose) for g in message.grasps]).reshape(-1, 4, 4)
    widths = np.array([g.width for g in message.grasps], dtype=np.float64)
    info = truth["info"]
    scene = generate_scene(info["seed"], info["split"])
    if not np.array_equal(scene.points, truth["points"]):
        raise ValueError(f"scene seed {info['seed']} does not reproduce the bag's cloud")
    scored = Scored(points, fields["contact"].astype(np.float64), poses, widths)
    return {
        "scene": scene,
        "metrics": score_scene(scene, scored, gripper),
        "part_margin": part_margin(scored.contact, point_labels(scene, points)),
        "scored": scored,
    }


def part_margin(contact: np.ndarray, labels: np.ndarray) -> float:
    """The highest contact probability on the part the task needs minus the highest elsewhere
    (points [M] the model saw, ``labels`` [M] on that part): positive when the part choice is
    right, negative when wrong, and the smaller its size, the less it takes to change the
    answer; 0 for a tie, which the first of the tied points decides (a point's probability is
    the mean over it and its nearest sampled points, so two points with the same neighbours,
    one each side of a part's edge, can share it). NaN without a labelled point."""
    on_part = np.asarray(labels) > 0
    if not on_part.any() or on_part.all():
        return float("nan")
    return float(contact[on_part].max() - contact[~on_part].max())


def jitter_cloud(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``points`` [P, 3] float32 with each coordinate moved at random one float32 step up,
    one down, or not at all."""
    step = rng.integers(-1, 2, points.shape)
    up, down = np.nextafter(points, np.float32(np.inf)), np.nextafter(points, np.float32(-np.inf))
    return np.where(step > 0, up, np.where(step < 0, down, points)).astype(np.float32)


def jittered_margins(predictor: Any, scene: Any, copies: int) -> list[float]:
    """``part_margin`` of ``predictor``'s contacts on ``copies`` jittered copies of the
    scene's cloud (:func:`jitter_cloud`, seeded by the scene)."""
    rng = np.random.default_rng([scene.seed, 1])
    margins = []
    for _ in range(copies):
        cloud = jitter_cloud(scene.points, rng)
        p = predictor.predict(scene.rgb, cloud, scene.instruction, scene.intrinsics, max_grasps=0)
        margins.append(part_margin(p.contact, point_labels(scene, p.points, cloud)))
    return margins


def machine() -> dict[str, Any]:
    """What the figures were computed on: CPU, the kernels torch dispatches, versions."""
    import torch

    from grasp_semantics.inference.predictor import resolve_device

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):  # not Linux
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": str(resolve_device("auto")),  # the node's device parameter: auto
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def run_demo(out_dir: Path, model: str, scenes: int, jitter: int = 0) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    bag = out_dir / "sample_bag"
    if not bag.exists():
        print(f"making the sample bag: {scenes} scenes -> {bag}")
        make_sample_bag(bag, scenes)
    predictions_bag = out_dir / "predictions_bag"
    if predictions_bag.exists():
        shutil.rmtree(predictions_bag)
    print(f"replaying {bag} through the node (model '{model}')")
    summary = replay(bag, predictions_bag, model=model)
    truths = {scene["stamp_ns"]: scene for scene in read_bag(bag)}
    gripper = GripperConfig()
    direct = None
    if jitter:
        from grasp_semantics.inference.predictor import GraspPredictor

        direct = GraspPredictor.from_pretrained(model)  # the node's defaults
    rows, metric_rows = [], []
    for index, (stamp, message) in enumerate(summary.results):
        result = score_prediction(message, truths[stamp], gripper)
        scene, scored = result["scene"], result["scored"]
        picture = save_prediction_png(
            out_dir / f"scene_{index:02d}.png",
            rgb=scene.rgb,
            intrinsics=scene.intrinsics,
            points=scored.points,
            contact=scored.contact,
            poses=scored.poses,
            widths=scored.widths,
            caption=f'"{message.instruction}"  ({message.inference_ms:.0f} ms)',
        )
        metric_rows.append(result["metrics"])
        rows.append(
            {
                "stamp_ns": stamp,
                "instruction": message.instruction,
                "seed": int(scene.seed),
                "picture": picture.name,
                "grasps": len(message.grasps),
                "part_margin": result["part_margin"],
                **result["metrics"],
            }
        )
        if direct is not None:
            margins = jittered_margins(direct, scene, jitter)
            rows[-1]["jittered_part_margins"] = margins
            rows[-1]["part_choice_changed"] = any(
                (m > 0) != (result["part_margin"] > 0) for m in margins
            )
    report = {
        "model": model,
        "machine": machine(),
        "bag": str(bag),
        "predictions_bag": str(predictions_bag),
        "replay": summary.as_dict(),
        "metrics": mean_metrics(metric_rows),
        "scenes": rows,
    }
    (out_dir / "summary.json").write_text(json.dumps(report, indent=2))
    return report


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder")
    parser.add_argument("--model", default="default", help="model name or checkpoint dir")
    parser.add_argument("--scenes", type=int, default=6, help="scenes in the sample bag")
    parser.add_argument(
        "--jitter",
        type=int,
        default=0,
        help="also predict on this many copies of each cloud moved by one float32 step",
    )


def run(args: argparse.Namespace, command: str) -> int:
    report = run_demo(args.out, args.model, args.scenes, args.jitter)
    for row in report["scenes"]:
        jittered = row.get("jittered_part_margins")
        spread = (
            f", {len(jittered)} jittered copies {min(jittered):+.3f} to {max(jittered):+.3f}"
            + (": part choice CHANGED" if row["part_choice_changed"] else "")
            if jittered
            else ""
        )
        print(
            f"  {row['picture']}: part {row['part_accuracy']:.0f} (margin "
            f"{row['part_margin']:+.3f}{spread})  success@1 {row['success_at_1']:.0f}  "
            f'"{row["instruction"]}"'
        )
    metrics, replayed = report["metrics"], report["replay"]
    print(
        f"{replayed['predictions']}/{replayed['pairs']} pairs predicted, median "
        f"{replayed['latency_ms_median']:.0f} ms; part accuracy {metrics['part_accuracy']:.2f}, "
        f"contact AP {metrics['contact_ap']:.2f}, success@1 {metrics['success_at_1']:.2f}, "
        f"success@5 {metrics['success_at_5']:.2f}"
    )
    where = report["machine"]
    print(
        f"on {where['cpu']} ({where['device']}, torch {where['torch']}, "
        f"{where['torch_cpu_capability']} kernels, {where['torch_threads']} threads)"
    )
    print(f"outputs in {args.out}/ (summary.json, scene_*.png, predictions_bag/)")
    return 0
