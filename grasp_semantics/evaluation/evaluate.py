"""``grasp-semantics evaluate``: contact, part and grasp metrics on held-out synthetic scenes.

    grasp-semantics evaluate --model default --split test --scenes 100 --seed 0 --json out.json

Each scene of a split is generated from its seed, the model predicts on its RGB image, cloud,
intrinsics and instruction, and the prediction is scored against the scene's labels:
contact AP and IoU@0.5 of the functional part and part accuracy on the points the model saw,
and success@1 / @5 of its ranked grasps, checked against the scene's meshes (fingers close on
the functional part of the target, antipodal within a friction cone of mu = 0.5, width within
the gripper, no collision with the table or any object; ``data/grasps.py``). Each criterion is
also reported for the best-ranked grasp alone (``top1_on_part``, ``top1_antipodal``, ...), to
show why success@1 fails.

Baselines run in the same pass on the same scenes:
- ``geometry_only``: the same model, the instruction withheld (replaced by the neutral
  "pick up the object"), so only what it sees is left: how much the instruction matters;
- ``planner_ranking`` (for a model with a grasp scorer): the same model and planned grasps,
  ranked by the planner's own quality instead of the scorer: what the scorer adds;
- ``random``: uniform random contact scores and grasps at random points with random
  orientations and widths;
- ``category_default`` and ``keyword_rule`` (``baselines.py``), given the right object: the
  category's most common training part, and the part a bag-of-words task classifier fitted on
  the training wordings picks; each part is turned into grasps by the model's own part planner
  (and grasp scorer), so their success@k compares with the model's;
- ``oracle_object``: the model's contact with every point off the right object set to 0, then
  planned on the same way: how much is lost in finding the object.
Per split, ``margins`` gives the model's part accuracy over the strongest baseline that is not
given the object (``geometry_only``, ``random``) with a paired bootstrap interval; ``ci95``
gives a 95 % percentile-bootstrap interval (scenes resampled, seed 0) of every figure of every
method, and ``per_scene`` each scene's seed, instruction, target, correct part and, per method,
the part chosen (the object and part of its most probable point) and each grasp's success
(``diagnosis``: finding the named object against choosing its part, ``diagnosis.py``).
``--split test`` evaluates the three held-out splits (instance, paraphrase, task-category pair).

``--physics`` also tries the five best grasps of the model, planner_ranking, geometry_only and
the scene's ground truth in MuJoCo (``physics/``: approach, close, lift 0.15 m, hold, shake;
success when the target is still held and the fingers touch the task's part), in worker
processes while the model goes on predicting, and reports physics success@1 / @5 beside the
geometric ones, both with 95 % bootstrap intervals over scenes, the agreement of the two judges
on every grasp tried, why the best-ranked grasps fail in physics, and the cost per trial.

``--resample K`` also measures how much the model's part choice depends on which points the
camera happened to return: each scene's cloud again, K times, with a random 2.5 % of its points
left out (a different farthest-point sample of the same surfaces), reporting the part accuracy
on those clouds and the share of scenes whose part choice is right on some and wrong on others
(``resampling`` in the JSON).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from grasp_semantics.data.grasps import check_grasps
from grasp_semantics.data.scene import Scene, SceneConfig, generate_scene
from grasp_semantics.data.splits import FINAL_SEED
from grasp_semantics.evaluation.baselines import KeywordRule, category_defaults, part_contact
from grasp_semantics.evaluation.diagnosis import diagnose, format_diagnosis
from grasp_semantics.evaluation.metrics import (
    bootstrap_interval,
    bootstrap_intervals,
    contact_metrics,
    grasp_metrics,
    mean_metrics,
    part_accuracy,
    top_grasp_criteria,
)
from grasp_semantics.evaluation.physics_figures import (
    format_physics,
    physics_figures,
    submit_trials,
)
from grasp_semantics.grasping.decoding import decode_grasps
from grasp_semantics.grasping.gripper import from_robot_tcp, grasp_poses
from grasp_semantics.grasping.scorer_features import scorer_ranking
from grasp_semantics.inference.predictor import MAX_CLOUD_POINTS, GraspPredictor
from grasp_semantics.models.config import GripperConfig

TEST_SPLITS = ("test_instance", "test_paraphrase", "test_pair")
NEUTRAL_INSTRUCTION = "pick up the object"
FRICTION = 0.5
MAX_GRASPS = 5
CRITERIA = ("width_ok", "collision_free", "closes", "on_part", "antipodal")
RESAMPLE_KEEP = 0.975  # the share of a cloud's points each resampled copy keeps
# baselines that must find the object themselves: the model's margin is over the best of these
NOT_GIVEN_OBJECT = ("geometry_only", "random")


@dataclass
class Scored:
    """A method's output on one scene, in the form the metrics take."""

    points: np.ndarray  # [M, 3] points the method scored
    contact: np.ndarray  # [M] contact scores
    poses: np.ndarray  # [G, 4, 4] best first
    widths: np.ndarray  # [G]


def point_indices(scene: Scene, points: np.ndarray, cloud: np.ndarray | None = None) -> np.ndarray:
    """Indices [M] into the scene's cloud of ``points`` [M, 3], which are exact copies of some
    of the scene's points (or of ``cloud`` [P, 3] float32, a copy of them moved but in the same
    order). Points are matched by a 64-bit key of their float32 bit patterns, sorted once, and
    checked bit for bit (a KeyError for a point that is not in the cloud)."""
    cloud = scene.points if cloud is None else cloud
    cloud_bits, point_bits = (
        np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).reshape(-1, 3)
        for a in (cloud, points)
    )
    cloud_keys, point_keys = (_row_keys(bits) for bits in (cloud_bits, point_bits))
    order = np.argsort(cloud_keys)
    found = np.minimum(np.searchsorted(cloud_keys[order], point_keys), len(order) - 1)
    indices = order[found]
    if (cloud_bits[indices] != point_bits).any():
        raise KeyError("a point is not in the scene's cloud")
    return indices


def _row_keys(bits: np.ndarray) -> np.ndarray:
    """One uint64 per row of ``bits`` [N, 3] uint32 (x and y whole, z mixed in)."""
    wide = bits.astype(np.uint64)
    return ((wide[:, 0] << np.uint64(32)) | wide[:, 1]) ^ (
        wide[:, 2] * np.uint64(0x9E3779B97F4A7C15)
    )


def point_labels(scene: Scene, points: np.ndarray, cloud: np.ndarray | None = None) -> np.ndarray:
    """Contact labels of ``points`` (see :func:`point_indices`)."""
    return scene.point_contact[point_indices(scene, points, cloud)]


def score_scene(scene: Scene, scored: Scored, gripper: GripperConfig) -> dict[str, float]:
    """All metrics of one method on one scene."""
    return scored_with_successes(scene, scored, gripper)[0]


def scored_with_successes(
    scene: Scene, scored: Scored, gripper: GripperConfig
) -> tuple[dict[str, float], np.ndarray]:
    """All metrics of one method on one scene, and the geometric success of each grasp."""
    labels = point_labels(scene, scored.points)
    if len(scored.poses):
        check = check_grasps(
            scene.grasp_world(),
            scored.poses,
            scored.widths,
            scene.target,
            scene.functional_part,
            mu=FRICTION,
            gripper=gripper,
        )
        successes = check.success
        criteria = {name: getattr(check, name) for name in CRITERIA}
    else:
        successes = np.zeros(0, dtype=bool)
        criteria = {name: successes for name in CRITERIA}
    metrics = {
        **contact_metrics(scored.contact, labels),
        **grasp_metrics(successes),
        **top_grasp_criteria(criteria),
    }
    return metrics, successes


def model_method(predictor: GraspPredictor, neutral: bool) -> Callable[[Scene], Scored]:
    def predict(scene: Scene) -> Scored:
        instruction = NEUTRAL_INSTRUCTION if neutral else scene.instruction
        p = predictor.predict(
            scene.rgb, scene.points, instruction, scene.intrinsics, max_grasps=MAX_GRASPS
        )
        poses = from_robot_tcp(p.poses, predictor.gripper)  # checked in the planning frame
        return Scored(p.points, p.contact, poses, p.widths)

    return predict


def resampled_points(scene: Scene, k: int, keep: float = RESAMPLE_KEEP) -> np.ndarray:
    """A seeded random ``keep`` share of ``scene``'s cloud (in order), the ``k``-th copy."""
    rng = np.random.default_rng([scene.seed, k])
    n = len(scene.points)
    return scene.points[np.sort(rng.choice(n, int(keep * n), replace=False))]


def resampling_figures(correct: np.ndarray) -> dict[str, float]:
    """Of part-choice outcomes ``correct`` [K+1, S] (the original cloud, then K resampled
    copies, of S scenes): the part accuracy on the copies and the share of scenes whose outcome
    is not the same on all K+1 clouds."""
    return {
        "part_accuracy": float(correct[1:].mean()),
        "changed_scenes": float((correct.min(axis=0) != correct.max(axis=0)).mean()),
        "copies": len(correct) - 1,
    }


def random_method(predictor: GraspPredictor, gripper: GripperConfig) -> Callable[[Scene], Scored]:
    def predict(scene: Scene) -> Scored:
        rng = np.random.default_rng(scene.seed)
        points = predictor.sample_points(scene.points)
        chosen = points[rng.choice(len(points), MAX_GRASPS, replace=False)]
        approach, closing = rng.normal(size=(2, MAX_GRASPS, 3))
        widths = rng.uniform(0.0, gripper.max_width, MAX_GRASPS)
        poses = grasp_poses(chosen.astype(np.float64), approach, closing, widths)
        return Scored(points, rng.uniform(size=len(points)), poses, widths)

    return predict


def part_planner(predictor: GraspPredictor) -> Callable[[Scene, np.ndarray, np.ndarray], Scored]:
    """Grasps for a contact field given on the predictor's sampled points, planned across its
    most probable part by the model's own part planner and ranked by its grasp scorer (when it
    has one), as the model's grasps are; these methods have no grasp head to fall back on, so
    a part the planner finds nothing on gets no grasp."""

    def plan(scene: Scene, points: np.ndarray, contact: np.ndarray) -> Scored:
        n = len(points)
        if not n or contact.max() <= 0:
            return Scored(points, contact, np.zeros((0, 4, 4)), np.zeros(0))
        scorer = predictor.scorer
        g = decode_grasps(
            points, contact, np.zeros(n), np.zeros((n, 3)), np.zeros((n, 3)),
            np.full(n, np.inf),  # no grasp head: none of its grasps fits the gripper
            predictor.model.cfg.heads, MAX_GRASPS, cloud=predictor.thin_cloud(scene.points),
            rank_planned=None if scorer is None else scorer_ranking(scorer),
            gripper=predictor.gripper,
        )  # fmt: skip
        return Scored(points, contact, g["poses"], g["widths"])

    return plan


def given_part_method(
    predictor: GraspPredictor, choose: Callable[[Scene], int]
) -> Callable[[Scene], Scored]:
    """A baseline given the right object: part ``choose(scene)`` of the target, planned on."""
    plan = part_planner(predictor)

    def predict(scene: Scene) -> Scored:
        points = predictor.sample_points(scene.points)  # the points the model sees
        index = point_indices(scene, points)
        contact = part_contact(
            scene.point_object[index], scene.point_part[index], points, scene.target,
            choose(scene),
        )  # fmt: skip
        return plan(scene, points, contact)

    return predict


def oracle_object_method(predictor: GraspPredictor) -> Callable[[Scene], Scored]:
    """The model's contact on the right object only (0 on every other point), planned on."""
    plan = part_planner(predictor)

    def predict(scene: Scene) -> Scored:
        p = predictor.predict(
            scene.rgb, scene.points, scene.instruction, scene.intrinsics, max_grasps=0
        )  # the model's own prediction, from its caches
        on_target = scene.point_object[point_indices(scene, p.points)] == scene.target
        return plan(scene, p.points, np.where(on_target, p.contact, 0).astype(np.float32))

    return predict


def baseline_methods(predictor: GraspPredictor) -> dict[str, Callable[[Scene], Scored]]:
    """The methods given the right object (see the module doc)."""
    defaults, rule = category_defaults(), KeywordRule()

    def category(scene: Scene) -> str:
        return scene.objects[scene.target].category

    return {
        "category_default": given_part_method(predictor, lambda s: defaults[category(s)]),
        "keyword_rule": given_part_method(
            predictor, lambda s: rule.part(s.instruction, category(s), s.reference)
        ),
        "oracle_object": oracle_object_method(predictor),
    }


def scene_record(
    scene: Scene, outputs: dict[str, Scored], successes: dict[str, np.ndarray]
) -> dict[str, Any]:
    """One scene's results for the JSON: what it asked, and per method the part its most
    probable point lies on and the success of each of its grasps, best first."""
    target = scene.objects[scene.target]
    chosen = np.stack(
        [scored.points[int(np.argmax(scored.contact))] for scored in outputs.values()]
    )
    index = point_indices(scene, chosen)
    methods = {}
    for name, i in zip(outputs, index, strict=True):
        obj, part = int(scene.point_object[i]), int(scene.point_part[i])
        methods[name] = {
            "object": obj,  # -1: the table
            "part": scene.objects[obj].part_names[part] if obj >= 0 else None,
            "part_correct": bool(scene.point_contact[i]),
            "successes": [bool(x) for x in successes[name]],
        }
    return {
        "seed": scene.seed,
        "instruction": scene.instruction,
        "task": scene.task,
        "target": scene.target,
        "target_instance": target.instance_id,
        "correct_part": target.part_names[scene.functional_part],
        "methods": methods,
    }


def margin_figures(rows: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """The model's part accuracy over the strongest of ``NOT_GIVEN_OBJECT`` (per-method rows of
    per-scene metrics), with a paired bootstrap interval of the difference."""
    model = np.array([r["part_accuracy"] for r in rows["model"]])
    candidates = {name: np.array([r["part_accuracy"] for r in rows[name]])
                  for name in NOT_GIVEN_OBJECT if name in rows}  # fmt: skip
    strongest = max(candidates, key=lambda name: candidates[name].mean())
    difference = model - candidates[strongest]
    return {
        "baseline": strongest,
        "baseline_part_accuracy": float(candidates[strongest].mean()),
        "model_part_accuracy": float(model.mean()),
        "margin": float(difference.mean()),
        "ci95": list(bootstrap_interval(difference)),
    }


def evaluate(
    model: str,
    splits: Sequence[str],
    scenes: int,
    seed: int,
    device: str = "auto",
    progress: bool = True,
    scene_points: int | None = SceneConfig.max_points,
    max_cloud_points: int | None = MAX_CLOUD_POINTS,
    resample: int = 0,
    gripper_sizes: dict[str, float] | None = None,
    scorer: bool = True,
    physics: bool = False,
    workers: int = 2,
) -> dict[str, Any]:
    """Metrics of the model and both baselines on ``scenes`` scenes of each split, whose clouds
    keep ``scene_points`` points (None: every point the camera sees on the table); the model
    thins them to ``max_cloud_points`` (None: no thinning). With ``resample`` K, also the
    model's part choice on K resampled copies of each cloud (:func:`resampling_figures`).
    ``gripper_sizes`` (GripperConfig fields) replace those of the checkpoint's gripper for the
    one grasps are planned for and checked with (a ValueError when the model's grasp scorer
    cannot rank for it: ``scorer`` False ranks by the planner's quality).
    With ``physics``, the best grasps of ``PHYSICS_METHODS`` are also tried in MuJoCo in
    ``workers`` processes (:func:`physics_figures`)."""
    predictor = GraspPredictor.from_pretrained(
        model, device=device, max_cloud_points=max_cloud_points, scorer=scorer
    )
    predictor.gripper = dataclasses.replace(predictor.gripper, **(gripper_sizes or {}))
    gripper = predictor.gripper
    methods = {
        "model": model_method(predictor, neutral=False),
        "geometry_only": model_method(predictor, neutral=True),
    }
    if predictor.scorer is not None:  # the same network (its encoder cache too), no scorer
        unscored = GraspPredictor(
            predictor.model,
            device=predictor.device,
            max_cloud_points=max_cloud_points,
            gripper=gripper,
        )
        methods["planner_ranking"] = model_method(unscored, neutral=False)
    methods["random"] = random_method(predictor, gripper)
    methods.update(baseline_methods(predictor))
    results: dict[str, Any] = {
        "model": model,
        "scenes_per_split": scenes,
        "seed": seed,
        "friction_mu": FRICTION,
        "scene_points": scene_points,
        "max_cloud_points": max_cloud_points,
        "gripper": dataclasses.asdict(gripper),
        "splits": {},
        "ci95": {},
        "margins": {},
        "per_scene": {},
    }
    if resample:
        results["resampling"] = {}
    scene_config = SceneConfig(max_points=scene_points)
    started = time.perf_counter()
    judge = None
    if physics:
        from grasp_semantics.physics.judge import Judge  # MuJoCo only when asked for

        judge = Judge(workers, gripper=gripper)
    geometric: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    for split in splits:
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in methods}
        records: list[dict[str, Any]] = []
        correct = np.zeros((resample + 1, scenes))
        for i in tqdm(range(scenes), desc=split, disable=not progress):
            scene = generate_scene(seed + i, split, scene_config)
            outputs = {name: method(scene) for name, method in methods.items()}
            scene_successes = {}
            for name, scored in outputs.items():
                metrics, successes = scored_with_successes(scene, scored, gripper)
                rows[name].append(metrics)
                scene_successes[name] = successes[:MAX_GRASPS]
            records.append(scene_record(scene, outputs, scene_successes))
            for name, scored in outputs.items():
                outputs[name] = (
                    scored.poses[:MAX_GRASPS],
                    scored.widths[:MAX_GRASPS],
                    scene_successes[name],
                )
            if judge is not None:
                geometric[split, i] = submit_trials(
                    judge, (split, i), scene, outputs, gripper, MAX_GRASPS, FRICTION
                )
            correct[0, i] = rows["model"][-1]["part_accuracy"]
            for k in range(1, resample + 1):  # the part choice only: no grasps planned
                p = predictor.predict(
                    scene.rgb,
                    resampled_points(scene, k),
                    scene.instruction,
                    scene.intrinsics,
                    max_grasps=0,
                )
                correct[k, i] = part_accuracy(p.contact, point_labels(scene, p.points))
        results["splits"][split] = {name: mean_metrics(r) for name, r in rows.items()}
        results["ci95"][split] = {name: bootstrap_intervals(r) for name, r in rows.items()}
        results["margins"][split] = margin_figures(rows)
        results["per_scene"][split] = records
        if resample:
            results["resampling"][split] = resampling_figures(correct)
    results["diagnosis"] = {split: diagnose(r) for split, r in results["per_scene"].items()}
    if judge is not None:
        predicted = time.perf_counter() - started
        with judge:
            done = judge.results()
        results["physics"] = physics_figures(splits, geometric, done)
        trials = sum(len(t) for _, r in done for t in r["trials"].values())
        results["physics"]["cost"] = {
            "trials": trials,
            "workers": workers,
            "seconds_per_trial": round(sum(r["seconds"] for _, r in done) / max(trials, 1), 4),
            "build_seconds_per_scene": round(
                sum(r["build_seconds"] for _, r in done) / max(len(done), 1), 4
            ),
            "seconds_after_predictions": round(time.perf_counter() - started - predicted, 1),
        }
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


COLUMNS = ("part_accuracy", "contact_ap", "contact_iou", "success_at_1", "success_at_5")
TOP1_COLUMNS = tuple(f"top1_{name}" for name in CRITERIA)


def format_table(results: dict[str, Any], columns: Sequence[str] = COLUMNS) -> str:
    """A markdown table of ``columns``: one row per split and method, each figure followed by
    its 95 % interval where ``results`` has one (``ci95``)."""
    lines = [
        "| split | method | " + " | ".join(columns) + " |",
        "| --- | --- | " + " | ".join("---" for _ in columns) + " |",
    ]
    for split, methods in results["splits"].items():
        for name, metrics in methods.items():
            ci = results.get("ci95", {}).get(split, {}).get(name, {})
            values = " | ".join(
                f"{metrics[c]:.3f}" + (f" [{ci[c][0]:.2f}, {ci[c][1]:.2f}]" if c in ci else "")
                for c in columns
            )
            lines.append(f"| {split} | {name} | {values} |")
    return "\n".join(lines)


def format_margins(margins: dict[str, Any]) -> str:
    """One line per split: the model's part-accuracy margin over the strongest baseline not
    given the object."""
    return "\n".join(
        f"{split}: model part accuracy {m['model_part_accuracy']:.3f}, {m['margin']:+.3f} "
        f"[{m['ci95'][0]:+.2f}, {m['ci95'][1]:+.2f}] over {m['baseline']} "
        f"({m['baseline_part_accuracy']:.3f}), the strongest baseline not given the object"
        for split, m in margins.items()
    )


def scene_seed(text: str) -> int:
    """A ``--seed`` value: an integer, or ``final`` for the first seed of the final range."""
    return FINAL_SEED if text == "final" else int(text)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--model", default="default", help="model name or checkpoint dir")
    parser.add_argument(
        "--split", default="test", help="a split name, or 'test' for the three held-out splits"
    )
    parser.add_argument("--scenes", type=int, default=100, help="scenes per split")
    parser.add_argument(
        "--seed",
        type=scene_seed,
        default=0,
        help=f"first scene seed; 'final': the final test range (from {FINAL_SEED:,}), for "
        "reported figures only, never for choosing anything",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--scene-points",
        type=int,
        default=SceneConfig.max_points,
        help="points each scene's cloud keeps (0: every point the camera sees on the table)",
    )
    parser.add_argument(
        "--max-cloud-points",
        type=int,
        default=MAX_CLOUD_POINTS,
        help="the model thins larger clouds to this many points (0: keeps every point)",
    )
    parser.add_argument(
        "--resample",
        type=int,
        default=0,
        help="also predict on this many resampled copies of each cloud (part choice only)",
    )
    parser.add_argument(
        "--gripper-max-width",
        type=float,
        help="plan for and check with a gripper opening at most this wide, m (default: the "
        "checkpoint's)",
    )
    parser.add_argument(
        "--gripper-finger-depth", type=float, help="that gripper's finger length, m"
    )
    parser.add_argument(
        "--no-scorer",
        action="store_true",
        help="rank planned grasps by the planner's quality, not the model's grasp scorer",
    )
    parser.add_argument(
        "--physics",
        action="store_true",
        help="also try the best grasps of each method in MuJoCo (physics success@1 / @5)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="processes running physics trials (0: inline)"
    )
    parser.add_argument("--json", type=Path, help="write the results here")


def run(args: argparse.Namespace, command: str) -> int:
    splits = TEST_SPLITS if args.split == "test" else (args.split,)
    sizes = {"max_width": args.gripper_max_width, "finger_depth": args.gripper_finger_depth}
    try:
        results = evaluate(
            *(args.model, splits, args.scenes, args.seed, args.device),
            scene_points=args.scene_points or None,
            max_cloud_points=args.max_cloud_points or None,
            resample=args.resample,
            gripper_sizes={name: value for name, value in sizes.items() if value is not None},
            scorer=not args.no_scorer,
            physics=args.physics,
            workers=args.workers,
        )
    except ValueError as error:  # a gripper the grasp scorer cannot rank for
        print(f"error: {error} (here: --no-scorer)", file=sys.stderr)
        return 2
    print(format_table(results))
    print("\nMean over scenes [95 % bootstrap interval].")
    print(format_margins(results["margins"]))
    print("\nFinding the named object, then its part:\n" + format_diagnosis(results["diagnosis"]))
    for split, figures in results.get("resampling", {}).items():
        print(
            f"{split}: part accuracy on {figures['copies']} resampled copies of each cloud "
            f"{figures['part_accuracy']:.3f}; part choice right on some and wrong on others in "
            f"{figures['changed_scenes']:.0%} of the scenes"
        )
    print("\nBest-ranked grasp, fraction meeting each success criterion:")
    print(format_table(results, TOP1_COLUMNS))
    if "physics" in results:
        cost = results["physics"]["cost"]
        print("\nPhysics (MuJoCo) and geometric success, 95 % bootstrap intervals:")
        print(format_physics(results["physics"]))
        print(
            f"\n{cost['trials']} trials, {cost['seconds_per_trial']:.3f} s each "
            f"(+{cost['build_seconds_per_scene']:.3f} s per scene to build it) in "
            f"{cost['workers']} worker(s); whole run {results['seconds']:.0f} s"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"written to {args.json}")
    return 0
