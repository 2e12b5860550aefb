"""Train the grasp scorer of a grasp model, leaving the grasp weights as they are:
``grasp-semantics train-scorer --config config/train_scorer_tiny.yaml``.

The grasp model (frozen) predicts contacts on synthetic scenes; the planner proposes grasps
across the predicted part(s); the collision-free ones (those the robot would be offered) are
described by ``gripper_view`` and labelled by the evaluation's grasp checks against the
scene's meshes. The scorer (``models/grasp_scorer.py``) learns success from those features
with a binary cross-entropy loss. The candidates are generated once into ``data.cache_dir``
by ``data.workers`` processes, under a key of what they depend on (the grasp model's weights,
its decoding settings, the features).

Validation is on whole scenes of another split, as the robot would use the scorer: the
fraction of scenes whose best-ranked candidate succeeds when ranked by the scorer, by the
planner's quality, and the fraction where any candidate does (the most a ranking can reach),
plus the average precision of the scorer over all candidates. The scorer is written to
``out_dir`` (by default ``grasp_scorer/`` beside the grasp weights) with its training log and
those figures (``eval.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from grasp_semantics.data.splits import check_not_final
from grasp_semantics.evaluation.metrics import average_precision
from grasp_semantics.grasping.scorer_features import gripper_view
from grasp_semantics.models.config import GraspScorerConfig
from grasp_semantics.models.grasp_net import GraspNet
from grasp_semantics.models.grasp_scorer import SCORER_DIR, GraspScorer
from grasp_semantics.training.run_config import (
    add_head_arguments,
    head_out_dir,
    head_run_config,
    load_run_config,
)

FRICTION = 0.5  # the evaluation's friction coefficient (evaluate.py)
SCENES_PER_JOB = 25  # scenes a worker process takes at a time


@dataclass
class ScorerDataConfig:
    cache_dir: str = "outputs/data/scorer"  # candidates, under candidates_key
    train_split: str = "train"
    train_scenes: int = 1500
    train_seed: int = 30_000  # scenes the shipped grasp model never trained on
    val_split: str = "val"
    val_scenes: int = 200
    val_seed: int = 0
    workers: int = 2
    # what a candidate's label is: "geometric" (the evaluation's grasp checks) or "physics"
    # (its MuJoCo trial succeeds; scorer_physics_labels.py), for the training and val scenes
    labels: str = "geometric"


@dataclass
class ScorerOptimConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-2
    epochs: int = 10
    batch_size: int = 256


@dataclass
class ScorerTrainConfig:
    """A scorer training run on the grasp model ``model`` (a directory or ``default``)."""

    model: str = "default"
    out_dir: str | None = None  # None: <model directory>/grasp_scorer
    scorer: dict[str, Any] = field(default_factory=dict)  # GraspScorerConfig fields
    data: ScorerDataConfig = field(default_factory=ScorerDataConfig)
    optim: ScorerOptimConfig = field(default_factory=ScorerOptimConfig)
    seed: int = 0
    threads: int = 2

    @classmethod
    def load(cls, path: str | Path) -> ScorerTrainConfig:
        return load_run_config(cls, path, data=ScorerDataConfig, optim=ScorerOptimConfig)


@dataclass
class Candidates:
    """Labelled planned grasps of a run of scenes (``N`` candidates)."""

    features: np.ndarray  # [N, F] float32, gripper_view
    success: np.ndarray  # [N] bool, by the evaluation's checks
    quality: np.ndarray  # [N] the planner's own quality
    scene: np.ndarray  # [N] int, the scene (seed) each came from

    @classmethod
    def concat(cls, parts: list[Candidates]) -> Candidates:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__annotations__))

    def save(self, path: Path) -> None:
        np.savez_compressed(path, **asdict(self))

    @classmethod
    def load(cls, path: Path) -> Candidates:
        with np.load(path) as data:
            return cls(**{name: data[name] for name in cls.__annotations__})


def scene_candidates(predictor, scene, scorer_cfg: GraspScorerConfig) -> Candidates:
    """The collision-free planned grasps of one scene (on each part planned on), featurised
    and checked."""
    return scene_grasps(predictor, scene, scorer_cfg)[0]


def scene_grasps(
    predictor, scene, scorer_cfg: GraspScorerConfig
) -> tuple[Candidates, np.ndarray, np.ndarray]:
    """:func:`scene_candidates` with the grasps themselves: camera-frame poses [N, 4, 4]
    (planning frame) and widths [N], in the candidates' order (for physics trials)."""
    from grasp_semantics.data.grasps import check_grasps
    from grasp_semantics.grasping.part_planning import collision_free_parts

    heads = predictor.model.cfg.heads
    gripper = predictor.gripper  # the checkpoint's: the scorer is saved with it
    p = predictor.predict(scene.rgb, scene.points, scene.instruction, scene.intrinsics)
    cloud = np.asarray(scene.points, dtype=np.float32)
    world = scene.grasp_world()
    parts = [
        Candidates(
            np.zeros((0, scorer_cfg.num_features), np.float32),
            np.zeros(0, bool),
            np.zeros(0),
            np.zeros(0, np.int64),
        )
    ]
    grasps = [(np.zeros((0, 4, 4)), np.zeros(0))]
    parts_planned = collision_free_parts(
        p.points, p.contact, cloud, heads.part_grasps, gripper, heads.collision_tolerance
    )
    for planned in parts_planned:
        grasps.append((planned.poses, planned.widths))
        check = check_grasps(
            world,
            planned.poses,
            planned.widths,
            scene.target,
            scene.functional_part,
            mu=FRICTION,
            gripper=gripper,
        )
        parts.append(
            Candidates(
                gripper_view(planned, scorer_cfg, gripper.max_width),
                check.success,
                planned.scores.astype(np.float64),
                np.full(len(planned.poses), scene.seed, np.int64),
            )
        )
    poses, widths = (np.concatenate(a) for a in zip(*grasps, strict=True))
    return Candidates.concat(parts), poses, widths


def _generate(job: tuple[str, str, list[int], dict[str, Any]]) -> Candidates:
    """One worker's scenes (its own predictor, one thread: the workers share the cores)."""
    from grasp_semantics.data.scene import generate_scene
    from grasp_semantics.inference.predictor import GraspPredictor

    model, split, seeds, scorer_fields = job
    torch.set_num_threads(1)
    predictor = GraspPredictor.from_pretrained(model, device="cpu", scorer=False)
    cfg = GraspScorerConfig.from_dict(scorer_fields)
    return Candidates.concat(
        [scene_candidates(predictor, generate_scene(s, split), cfg) for s in seeds]
    )


def candidates_key(model: GraspNet, scorer_cfg: GraspScorerConfig) -> str:
    """What the candidates depend on besides the scenes: the grasp weights (their contact
    predictions), the decoding settings (the planner, the collision check) and the features."""
    settings = json.dumps(
        {
            "heads": asdict(model.cfg.heads),
            "scorer": scorer_cfg.to_dict(),
            "features": scorer_cfg.num_features,
        },
        sort_keys=True,
    )
    digest = hashlib.blake2b(settings.encode(), digest_size=8).hexdigest()
    return f"{model.fingerprint()}-{digest}"


def prepare_candidates(
    cfg: ScorerTrainConfig, key: str, split: str, scenes: int, seed: int, progress: bool = True
) -> Candidates:
    """The candidates of ``scenes`` scenes of ``split`` from ``seed``, from the cache (under
    ``key``, :func:`candidates_key`) or made (and cached) by ``cfg.data.workers`` processes."""
    scorer_cfg = GraspScorerConfig.from_dict(cfg.scorer)
    path = Path(cfg.data.cache_dir) / key / f"{split}_{seed}_{scenes}.npz"
    if path.is_file():
        return Candidates.load(path)
    jobs = [
        (
            cfg.model,
            split,
            list(range(start, min(start + SCENES_PER_JOB, seed + scenes))),
            scorer_cfg.to_dict(),
        )
        for start in range(seed, seed + scenes, SCENES_PER_JOB)
    ]
    workers = max(1, min(cfg.data.workers, len(jobs)))
    label = f"candidates {split}"
    if workers == 1:
        parts = [_generate(job) for job in tqdm(jobs, desc=label, disable=not progress)]
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            parts = list(
                tqdm(pool.imap(_generate, jobs), total=len(jobs), desc=label, disable=not progress)
            )
    candidates = Candidates.concat(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    candidates.save(path)
    return candidates


def ranking_figures(probability: np.ndarray, candidates: Candidates) -> dict[str, float]:
    """Per scene, whether the best-ranked candidate succeeds: ranked by ``probability`` [N]
    (``scorer_success_at_1``), by the planner's quality (``planner_success_at_1``), and
    whether any does (``any_success``); means over the scenes with candidates, and the
    scorer's average precision over all candidates."""
    scorer, planner, best = [], [], []
    for s in np.unique(candidates.scene):
        at = np.flatnonzero(candidates.scene == s)
        ok = candidates.success[at]
        scorer.append(ok[np.argmax(probability[at])])
        planner.append(ok[np.argmax(candidates.quality[at])])
        best.append(ok.any())
    return {
        "scenes_with_candidates": len(scorer),
        "scorer_success_at_1": float(np.mean(scorer)),
        "planner_success_at_1": float(np.mean(planner)),
        "any_success": float(np.mean(best)),
        "candidate_ap": average_precision(probability, candidates.success.astype(np.int64)),
    }


def train_scorer(cfg: ScorerTrainConfig, progress: bool = True) -> dict[str, Any]:
    """Generate candidates, train, save and validate the scorer; returns the figures."""
    from grasp_semantics.inference.predictor import GraspPredictor, checkpoint_gripper

    if cfg.data.labels not in ("geometric", "physics"):
        raise ValueError(f"data.labels must be 'geometric' or 'physics', not {cfg.data.labels!r}")
    torch.set_num_threads(cfg.threads)
    out_dir = head_out_dir(cfg.model, cfg.out_dir, SCORER_DIR)
    model = GraspPredictor.from_pretrained(cfg.model, device="cpu", scorer=False).model
    fingerprint = model.fingerprint()
    started = time.perf_counter()
    d = cfg.data
    check_not_final(d.train_seed, d.train_scenes, "training")
    check_not_final(d.val_seed, d.val_scenes, "validation")
    key = candidates_key(model, GraspScorerConfig.from_dict(cfg.scorer))
    if d.labels == "physics":
        from grasp_semantics.training.scorer_physics_labels import physics_candidates

        train = physics_candidates(cfg, key, d.train_split, d.train_scenes, d.train_seed, progress)
        val = physics_candidates(cfg, key, d.val_split, d.val_scenes, d.val_seed, progress)
    else:
        train = prepare_candidates(cfg, key, d.train_split, d.train_scenes, d.train_seed, progress)
        val = prepare_candidates(cfg, key, d.val_split, d.val_scenes, d.val_seed, progress)
    if not len(train.success) or not len(val.success):
        raise RuntimeError("no planned grasps to train or validate on; generate more scenes")
    data_seconds = time.perf_counter() - started

    # seeded here: making candidates (not reading them from the cache) draws from torch's
    # generator, and the scorer must start the same either way
    torch.manual_seed(cfg.seed)
    scorer = GraspScorer(GraspScorerConfig.from_dict(cfg.scorer), checkpoint_gripper(model.cfg))
    features = torch.from_numpy(train.features)
    labels = torch.from_numpy(train.success.astype(np.float32))
    val_features = torch.from_numpy(val.features)
    optimizer = torch.optim.AdamW(
        scorer.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = (out_dir / "train_log.jsonl").open("w")
    for epoch in range(1, cfg.optim.epochs + 1):
        scorer.train()
        order = torch.randperm(len(labels), generator=generator)
        total = 0.0
        for start in range(0, len(order), cfg.optim.batch_size):
            batch = order[start : start + cfg.optim.batch_size]
            loss = F.binary_cross_entropy_with_logits(scorer(features[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        scorer.eval()
        with torch.inference_mode():
            probability = torch.sigmoid(scorer(val_features)).numpy()
        row = {
            "epoch": epoch,
            "loss": round(total / len(labels), 4),
            **ranking_figures(probability, val),
        }
        log.write(json.dumps(row) + "\n")
        log.flush()
        if progress:
            print(row, flush=True)
    log.close()
    scorer.save(out_dir, fingerprint)
    (out_dir / "train_config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    figures = {
        "model": cfg.model,
        "labels": d.labels,
        "train_scenes": d.train_scenes,
        "train_candidates": len(train.success),
        "train_positive_fraction": round(float(train.success.mean()), 4),
        "val_split": d.val_split,
        "val_scenes": d.val_scenes,
        "val_seed": d.val_seed,
        **{k: v for k, v in row.items() if k not in ("epoch", "loss")},
        "data_seconds": round(data_seconds, 1),
        "train_seconds": round(time.perf_counter() - started - data_seconds, 1),
    }
    (out_dir / "eval.json").write_text(json.dumps(figures, indent=1) + "\n")
    return figures


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    add_head_arguments(parser, "config/train_scorer_tiny.yaml", "epochs")
    parser.add_argument("--labels", choices=("geometric", "physics"), help="override data.labels")


def run_config(args: argparse.Namespace) -> ScorerTrainConfig:
    """The run's config: ``--config`` with the command line's overrides."""
    cfg = head_run_config(ScorerTrainConfig, args, "epochs")
    if args.labels:
        cfg.data.labels = args.labels
    return cfg


def run(args: argparse.Namespace, command: str) -> int:
    print(json.dumps(train_scorer(run_config(args)), indent=1))
    return 0
