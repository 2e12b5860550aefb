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
   whose margin is small can change its answer on another machine (README, "Results").
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
from grasp_semantics.drawing import save_prediction_png
from grasp_semantics.evaluate import Scored, point_labels, score_scene
from grasp_semantics.gripper import GripperConfig
from grasp_semantics.metrics import mean_metrics
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
    right, and the smaller its size, the less it takes to change the answer. NaN without a
    labelled point."""
    on_part = np.asarray(labels) > 0
    if not on_part.any() or on_part.all():
        return float("nan")
    return float(contact[on_part].max() - contact[~on_part].max())


def machine() -> dict[str, Any]:
    """What the figures were computed on: CPU, the kernels torch dispatches, versions."""
    import torch

    from grasp_semantics.predictor import resolve_device

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


def run_demo(out_dir: Path, model: str, scenes: int) -> dict[str, Any]:
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


def run(args: argparse.Namespace, command: str) -> int:
    report = run_demo(args.out, args.model, args.scenes)
    for row in report["scenes"]:
        print(
            f"  {row['picture']}: part {row['part_accuracy']:.0f} (margin "
            f"{row['part_margin']:+.3f})  success@1 {row['success_at_1']:.0f}  "
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
