"""Physics as a second judge in ``evaluate --physics``: queue each scene's best grasps for
MuJoCo trials (``physics/judge.py``) and turn the trials into figures: physics and geometric
success@1 / @5 with 95 % bootstrap intervals over scenes, the outcome of the best-ranked
grasp, and the agreement table of the two judges over every grasp tried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from grasp_semantics.data.grasps import check_grasps
from grasp_semantics.data.scene import Scene
from grasp_semantics.evaluation.metrics import bootstrap_interval
from grasp_semantics.models.config import GripperConfig

PHYSICS_METHODS = ("model", "planner_ranking", "geometry_only", "ground_truth")
AGREEMENT = (  # (geometric pass, physics pass) -> name
    ((True, True), "geometric_pass_physics_pass"),
    ((True, False), "geometric_pass_physics_fail"),
    ((False, True), "geometric_fail_physics_pass"),
    ((False, False), "geometric_fail_physics_fail"),
)


def submit_trials(
    judge,
    key: tuple[str, int],
    scene: Scene,
    outputs: dict,
    gripper: GripperConfig,
    max_grasps: int,
    friction: float,
) -> dict[str, np.ndarray]:
    """Queue the physics trials of one scene's best grasps of ``PHYSICS_METHODS`` (``outputs``:
    method -> (poses, widths, geometric successes)); returns each method's geometric
    successes of the grasps queued (the ``max_grasps`` best, checked with ``friction``)."""
    from grasp_semantics.physics.trial import SceneSpec

    check = check_grasps(
        scene.grasp_world(),
        scene.grasps[:max_grasps],
        scene.grasp_widths[:max_grasps],
        scene.target,
        scene.functional_part,
        mu=friction,
        gripper=gripper,
    )
    outputs = {
        **outputs,
        "ground_truth": (
            scene.grasps[:max_grasps],
            scene.grasp_widths[:max_grasps],
            check.success,
        ),
    }
    spec = SceneSpec.of(scene)
    grasps = {
        name: (spec.to_world(outputs[name][0]), np.asarray(outputs[name][1], np.float64))
        for name in PHYSICS_METHODS
        if name in outputs
    }
    judge.submit(key, spec, grasps)
    return {name: np.asarray(outputs[name][2][:max_grasps], bool) for name in grasps}


def _with_interval(values: np.ndarray) -> dict[str, Any]:
    low, high = bootstrap_interval(values)
    return {"mean": float(np.mean(values)) if len(values) else float("nan"), "ci95": [low, high]}


def physics_figures(
    splits: Sequence[str],
    geometric: dict[tuple[str, int], dict[str, np.ndarray]],
    done: list[tuple[Any, dict]],
) -> dict[str, Any]:
    """Per split and method: physics and geometric success@1 / @5 with 95 % bootstrap
    intervals, the outcome of the best-ranked grasp, the agreement table of the two judges
    over every grasp tried, and each scene's trial outcomes."""
    trials = dict(done)
    out: dict[str, Any] = {"splits": {}}
    for split in splits:
        keys = sorted(k for k in trials if k[0] == split)
        methods = [m for m in PHYSICS_METHODS if keys and m in trials[keys[0]]["trials"]]
        figures = {}
        for method in methods:
            physical = [
                np.array([t["outcome"] == "success" for t in trials[k]["trials"][method]], bool)
                for k in keys
            ]
            geo = [geometric[k][method] for k in keys]
            agreement = {name: 0 for _, name in AGREEMENT}
            for g, p in zip(geo, physical, strict=True):
                for (gv, pv), name in AGREEMENT:
                    agreement[name] += int(np.sum((g == gv) & (p == pv)))
            top1 = [trials[k]["trials"][method][:1] for k in keys]
            outcomes: dict[str, int] = {}
            for first in top1:
                name = first[0]["outcome"] if first else "no_grasp"
                outcomes[name] = outcomes.get(name, 0) + 1
            figures[method] = {
                "physics_success_at_1": _with_interval([p[:1].any() for p in physical]),
                "physics_success_at_5": _with_interval([p[:5].any() for p in physical]),
                "geometric_success_at_1": _with_interval([g[:1].any() for g in geo]),
                "geometric_success_at_5": _with_interval([g[:5].any() for g in geo]),
                "top1_outcomes": dict(sorted(outcomes.items())),
                "agreement": agreement,
                "scenes": len(keys),
                "outcomes": [[t["outcome"] for t in trials[k]["trials"][method]] for k in keys],
            }
        out["splits"][split] = figures
    return out


def format_physics(physics: dict[str, Any]) -> str:
    """Markdown tables: success by both judges with intervals, then the agreement table."""

    def cell(figure: dict[str, Any]) -> str:
        low, high = figure["ci95"]
        return f"{figure['mean']:.2f} [{low:.2f}, {high:.2f}]"

    lines = [
        "| split | method | physics s@1 | physics s@5 | geometric s@1 | geometric s@5 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for split, methods in physics["splits"].items():
        for name, f in methods.items():
            lines.append(
                f"| {split} | {name} | {cell(f['physics_success_at_1'])} | "
                f"{cell(f['physics_success_at_5'])} | {cell(f['geometric_success_at_1'])} | "
                f"{cell(f['geometric_success_at_5'])} |"
            )
    lines += [
        "",
        "Agreement over every grasp tried (geometric / physics):",
        "",
        "| split | method | pass / pass | pass / fail | fail / pass | fail / fail | "
        "best-ranked grasp in physics |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split, methods in physics["splits"].items():
        for name, f in methods.items():
            a = [str(f["agreement"][n]) for _, n in AGREEMENT]
            why = ", ".join(f"{k} {v}" for k, v in f["top1_outcomes"].items())
            lines.append(f"| {split} | {name} | {' | '.join(a)} | {why} |")
    return "\n".join(lines)
