"""Physics labels against geometric labels for the grasp scorer, both judged by physics:
``python -m grasp_semantics.training.compare_scorer_labels --train-scenes 150 --val-scenes 100
--json docs/scorer_physics_labels.json``.

The same training scenes (the scorer config's ``train_seed`` on) are labelled both ways: every
collision-free planned grasp is checked geometrically and tried in MuJoCo
(``scorer_physics_labels``). Two scorers are trained with the config's settings, differing only
in ``data.labels``. On the same validation scenes (the config's ``val_seed`` on; never test
scenes), whose candidates are all tried in MuJoCo too, each ranking is judged as the predictor
uses it: physics success@1 is the trial of the best-ranked candidate, success@5 whether any of
the five best after the predictor's pose NMS succeeds, with 95 % bootstrap intervals over
scenes and paired intervals of the differences. The planner's own quality and the shipped
scorer (of ``model``) are reference rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grasp_semantics.evaluation.metrics import average_precision, bootstrap_interval
from grasp_semantics.grasping.decoding import pose_nms
from grasp_semantics.models.config import GraspScorerConfig, HeadsConfig
from grasp_semantics.models.grasp_scorer import SCORER_DIR, GraspScorer
from grasp_semantics.physics.trial import OUTCOMES, TrialConfig
from grasp_semantics.training.scorer_physics_labels import TriedCandidates, prepare_tried
from grasp_semantics.training.train_scorer import (
    ScorerTrainConfig,
    candidates_key,
    prepare_candidates,
    train_scorer,
)

LABELS = ("physics", "geometric")
TOP_K = 5


def ranking_successes(
    scores: np.ndarray, tried: TriedCandidates, heads: HeadsConfig, k: int = TOP_K
) -> dict[str, np.ndarray]:
    """Per scene with candidates, whether the best-ranked (by ``scores`` [N]) and any of the
    ``k`` best after the predictor's pose NMS succeed, by physics and by geometry."""
    out: dict[str, list[bool]] = {
        f"{judge}_success_at_{n}": [] for judge in ("physics", "geometric") for n in (1, k)
    }
    for s in np.unique(tried.scene):
        at = np.flatnonzero(tried.scene == s)
        keep = at[
            pose_nms(
                tried.poses[at],
                scores[at],
                k,
                heads.nms_translation,
                np.deg2rad(heads.nms_rotation_deg),
            )
        ]
        for judge in ("physics", "geometric"):
            ok = getattr(tried, judge)
            out[f"{judge}_success_at_1"].append(bool(ok[keep[0]]))
            out[f"{judge}_success_at_{k}"].append(bool(ok[keep].any()))
    return {name: np.array(values) for name, values in out.items()}


def with_interval(values: np.ndarray) -> dict[str, Any]:
    """Mean of per-scene values with its 95 % percentile-bootstrap interval."""
    low, high = bootstrap_interval(values)
    return {"mean": round(float(np.mean(values)), 4), "ci95": [round(low, 4), round(high, 4)]}


def ranking_table(
    rankings: dict[str, np.ndarray], tried: TriedCandidates, heads: HeadsConfig
) -> dict[str, Any]:
    """Each ranking's success@1/@5 (physics and geometric) on ``tried``'s scenes, its
    candidates' average precision against the physics labels, the best-ranked candidates'
    physics outcomes, and the first ranking's paired physics differences to the others."""
    per_scene = {name: ranking_successes(s, tried, heads) for name, s in rankings.items()}
    table: dict[str, Any] = {}
    for name, scores in rankings.items():
        best = [at[np.argmax(scores[at])] for at in _scene_indices(tried)]
        outcomes = [OUTCOMES[i] for i in tried.outcome[best]]
        table[name] = {
            **{m: with_interval(v) for m, v in per_scene[name].items()},
            "physics_candidate_ap": round(
                average_precision(scores, tried.physics.astype(np.int64)), 4
            ),
            "best_ranked_outcomes": {o: outcomes.count(o) for o in OUTCOMES if o in outcomes},
        }
    first = next(iter(rankings))
    differences = {
        f"{first} - {other}": {
            m: with_interval(per_scene[first][m].astype(float) - per_scene[other][m])
            for m in ("physics_success_at_1", f"physics_success_at_{TOP_K}")
        }
        for other in rankings
        if other != first
    }
    return {"rankings": table, "paired_differences": differences}


def _scene_indices(tried: TriedCandidates) -> list[np.ndarray]:
    return [np.flatnonzero(tried.scene == s) for s in np.unique(tried.scene)]


def label_figures(tried: TriedCandidates) -> dict[str, Any]:
    """How the two labels of the same candidates compare, and the trials' outcomes."""
    p, g = tried.physics, tried.geometric
    return {
        "scenes": len(np.unique(tried.scene)),
        "candidates": len(p),
        "physics_positive_fraction": round(float(p.mean()), 4),
        "geometric_positive_fraction": round(float(g.mean()), 4),
        "agreement": {
            "geometric_pass_physics_pass": int((g & p).sum()),
            "geometric_pass_physics_fail": int((g & ~p).sum()),
            "geometric_fail_physics_pass": int((~g & p).sum()),
            "geometric_fail_physics_fail": int((~g & ~p).sum()),
        },
        "outcomes": {o: int((tried.outcome == i).sum()) for i, o in enumerate(OUTCOMES)},
        "physics_any_success_per_scene": round(
            float(np.mean([p[at].any() for at in _scene_indices(tried)])), 4
        ),
    }


def probabilities(scorer: GraspScorer, features: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return torch.sigmoid(scorer.eval()(torch.from_numpy(features))).numpy()


def compare_labels(
    config: str | Path = "config/train_scorer_tiny.yaml",
    train_scenes: int = 150,
    val_scenes: int = 100,
    workers: int = 2,
    out_dir: str | Path = "outputs/scorer_labels",
    progress: bool = True,
) -> dict[str, Any]:
    """Label, train both scorers into ``out_dir``/<labels>_labels and judge them (module doc)."""
    from grasp_semantics.inference.predictor import GraspPredictor
    from grasp_semantics.inference.scene_questions import model_directory

    base = ScorerTrainConfig.load(config)
    base.data = dataclasses.replace(
        base.data, train_scenes=train_scenes, val_scenes=val_scenes, workers=workers
    )
    torch.set_num_threads(base.threads)
    model = GraspPredictor.from_pretrained(base.model, device="cpu", scorer=False).model
    key = candidates_key(model, GraspScorerConfig.from_dict(base.scorer))
    d, trial = base.data, TrialConfig()
    started = time.perf_counter()
    train = prepare_tried(base, key, d.train_split, train_scenes, d.train_seed, trial, progress)
    val = prepare_tried(base, key, d.val_split, val_scenes, d.val_seed, trial, progress)
    labelled = time.perf_counter() - started
    # the geometric path's own candidates of these scenes must be the ones tried
    for tried, split, seed, n in (
        (train, d.train_split, d.train_seed, train_scenes),
        (val, d.val_split, d.val_seed, val_scenes),
    ):
        geometric = prepare_candidates(base, key, split, n, seed, progress)
        if not (
            np.array_equal(geometric.features, tried.features)
            and np.array_equal(geometric.success, tried.geometric)
        ):
            raise RuntimeError(f"the {split} candidates tried differ from the geometric path's")
    runs, scorers = {}, {}
    for labels in LABELS:
        cfg = dataclasses.replace(
            base,
            out_dir=str(Path(out_dir) / f"{labels}_labels"),
            data=dataclasses.replace(d, labels=labels),
        )
        runs[labels] = train_scorer(cfg, progress)
        scorers[f"scorer_{labels}_labels"] = GraspScorer.load(cfg.out_dir, model.fingerprint())
    shipped_dir = model_directory(base.model) / SCORER_DIR
    scorers["shipped_scorer"] = GraspScorer.load(shipped_dir, model.fingerprint())
    rankings = {name: probabilities(s, val.features) for name, s in scorers.items()}
    rankings["planner_ranking"] = val.quality
    table = ranking_table(rankings, val, model.cfg.heads)
    at_1 = {n: r["physics_success_at_1"]["mean"] for n, r in table["rankings"].items()}
    return {
        "command": "python -m grasp_semantics.training.compare_scorer_labels "
        f"--config {config} --train-scenes {train_scenes} --val-scenes {val_scenes} "
        f"--workers {workers} --out-dir {out_dir}",
        "model": base.model,
        "train": {"split": d.train_split, "seed": d.train_seed, **label_figures(train)},
        "val": {"split": d.val_split, "seed": d.val_seed, **label_figures(val)},
        "trial": dataclasses.asdict(trial),
        "shipped_scorer": json.loads((shipped_dir / "eval.json").read_text()),
        **table,
        "training_runs": runs,
        "physics_labels_beat_shipped_at_1": at_1["scorer_physics_labels"] > at_1["shipped_scorer"],
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "labelling_seconds": round(labelled, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }


def format_comparison(result: dict[str, Any]) -> str:
    """The rankings and the paired differences of :func:`compare_labels` as Markdown tables."""

    def cell(figure: dict[str, Any]) -> str:
        low, high = figure["ci95"]
        return f"{figure['mean']:.2f} [{low:.2f}, {high:.2f}]"

    k = TOP_K
    lines = [
        f"| ranking | physics s@1 | physics s@{k} | geometric s@1 | geometric s@{k} | "
        "physics AP |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in result["rankings"].items():
        lines.append(
            f"| {name} | {cell(r['physics_success_at_1'])} | {cell(r[f'physics_success_at_{k}'])}"
            f" | {cell(r['geometric_success_at_1'])} | {cell(r[f'geometric_success_at_{k}'])} | "
            f"{r['physics_candidate_ap']:.3f} |"
        )
    lines += ["", f"| paired difference | physics s@1 | physics s@{k} |", "| --- | --- | --- |"]
    for name, d in result["paired_differences"].items():
        at_k = d[f"physics_success_at_{k}"]
        lines.append(f"| {name} | {cell(d['physics_success_at_1'])} | {cell(at_k)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/train_scorer_tiny.yaml")
    parser.add_argument("--train-scenes", type=int, default=150)
    parser.add_argument("--val-scenes", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="processes running trials")
    parser.add_argument("--out-dir", default="outputs/scorer_labels", help="the two scorers")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    result = compare_labels(
        args.config, args.train_scenes, args.val_scenes, args.workers, args.out_dir
    )
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    print(format_comparison(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
