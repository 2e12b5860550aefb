"""Physics labels for the grasp scorer's training candidates (``data.labels: physics``).

The candidates are the geometric path's (``train_scorer.scene_grasps``: the same scenes, the
same collision-free planned grasps, the same ``gripper_view`` features); each one's label is
whether its MuJoCo trial succeeds (``physics/trial.py``: approach, close, lift, hold, shake).
Scenes are handed out to ``data.workers`` spawned processes (each with its own one-thread
predictor, compiling each scene once for all its trials), and every scene is written to the
cache as soon as it is done, under a key of what the labels depend on (:func:`physics_key`:
the candidates' key, the label kind, the trial settings, the gripper, the MuJoCo version), so
a stopped run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from grasp_semantics.grasping.gripper import to_robot_tcp
from grasp_semantics.models.config import GraspScorerConfig
from grasp_semantics.physics.trial import OUTCOMES, TrialConfig
from grasp_semantics.training.train_scorer import Candidates, ScorerTrainConfig

SCENES_PER_JOB = 5  # scenes a worker takes at a time (each is cached as soon as it is done)


@dataclass
class TriedCandidates:
    """A run of scenes' candidates (``N``) with both labels and the grasps tried."""

    features: np.ndarray  # [N, F] float32, gripper_view
    physics: np.ndarray  # [N] bool, the MuJoCo trial succeeded
    geometric: np.ndarray  # [N] bool, the evaluation's geometric checks passed
    outcome: np.ndarray  # [N] int8, index into physics.trial.OUTCOMES
    quality: np.ndarray  # [N] the planner's own quality
    scene: np.ndarray  # [N] int, the scene (seed) each came from
    poses: np.ndarray  # [N, 4, 4] camera frame (planning frame), as planned
    widths: np.ndarray  # [N] m

    @classmethod
    def concat(cls, parts: list[TriedCandidates]) -> TriedCandidates:
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def save(self, path: Path) -> None:
        """Written whole or not at all (a stopped run leaves no half file to resume from)."""
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial.npz")
        np.savez_compressed(partial, **asdict(self))
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> TriedCandidates:
        with np.load(path) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})

    def candidates(self, labels: str) -> Candidates:
        """The scorer's training data with ``labels`` ("physics" or "geometric")."""
        success = {"physics": self.physics, "geometric": self.geometric}[labels]
        return Candidates(self.features, success, self.quality, self.scene)


def physics_key(candidates_key: str, trial: TrialConfig | None = None) -> str:
    """The cache key of physics labels: the candidates' (:func:`train_scorer.candidates_key`,
    which fixes the grasp model and so the gripper tried), the label kind, and a digest of the
    trial settings and MuJoCo's version."""
    import mujoco

    settings = json.dumps(
        {"trial": asdict(trial or TrialConfig()), "mujoco": mujoco.__version__}, sort_keys=True
    )
    digest = hashlib.blake2b(settings.encode(), digest_size=8).hexdigest()
    return f"{candidates_key}-physics-{digest}"


def scene_tried(predictor, scene, scorer_cfg: GraspScorerConfig, trial: TrialConfig):
    """One scene's candidates, each tried in MuJoCo (the scene compiled once)."""
    from grasp_semantics.physics.trial import SceneSpec, TrialWorld
    from grasp_semantics.training.train_scorer import scene_grasps

    candidates, poses, widths = scene_grasps(predictor, scene, scorer_cfg)
    outcomes: list[str] = []
    if len(poses):
        spec = SceneSpec.of(scene)
        world = TrialWorld(spec, predictor.gripper, trial)
        world_poses = spec.to_world(to_robot_tcp(poses, predictor.gripper))
        outcomes = [
            world.run(p, float(w)).outcome for p, w in zip(world_poses, widths, strict=True)
        ]
    return TriedCandidates(
        features=candidates.features,
        physics=np.array([o == "success" for o in outcomes], bool),
        geometric=candidates.success,
        outcome=np.array([OUTCOMES.index(o) for o in outcomes], np.int8),
        quality=candidates.quality,
        scene=candidates.scene,
        poses=np.asarray(poses, np.float64).reshape(-1, 4, 4),
        widths=np.asarray(widths, np.float64),
    )


def _label(job: tuple[str, str, list[int], dict[str, Any], dict[str, Any], str]) -> int:
    """A worker process's share (one thread: the workers share the cores)."""
    import torch

    torch.set_num_threads(1)
    return label_scenes(*job)


def label_scenes(
    model: str,
    split: str,
    seeds: list[int],
    scorer_fields: dict[str, Any],
    trial_fields: dict[str, Any],
    directory: str,
) -> int:
    """Scenes ``seeds`` of ``split`` tried, each written to ``directory`` when done; how many."""
    from grasp_semantics.data.scene import generate_scene
    from grasp_semantics.inference.predictor import GraspPredictor

    predictor = GraspPredictor.from_pretrained(model, device="cpu", scorer=False)
    scorer_cfg = GraspScorerConfig.from_dict(scorer_fields)
    trial = TrialConfig(**trial_fields)
    for seed in seeds:
        tried = scene_tried(predictor, generate_scene(seed, split), scorer_cfg, trial)
        tried.save(Path(directory) / f"{seed}.npz")
    return len(seeds)


def prepare_tried(
    cfg: ScorerTrainConfig,
    key: str,
    split: str,
    scenes: int,
    seed: int,
    trial: TrialConfig | None = None,
    progress: bool = True,
) -> TriedCandidates:
    """The tried candidates of ``scenes`` scenes of ``split`` from ``seed``: each scene from
    the cache (``cfg.data.cache_dir``/:func:`physics_key`/``split``/``<seed>.npz``) or tried
    by ``cfg.data.workers`` processes (0 or 1: in this process) and cached."""
    trial = trial or TrialConfig()
    directory = Path(cfg.data.cache_dir) / physics_key(key, trial) / split
    directory.mkdir(parents=True, exist_ok=True)
    seeds = range(seed, seed + scenes)
    missing = [s for s in seeds if not (directory / f"{s}.npz").is_file()]
    scorer = GraspScorerConfig.from_dict(cfg.scorer).to_dict()
    jobs = [
        (cfg.model, split, missing[i : i + SCENES_PER_JOB], scorer, asdict(trial), str(directory))
        for i in range(0, len(missing), SCENES_PER_JOB)
    ]
    bar = tqdm(total=len(missing), desc=f"physics labels {split}", disable=not progress)
    if cfg.data.workers <= 1:
        for job in jobs:
            bar.update(label_scenes(*job))
    elif jobs:
        with mp.get_context("spawn").Pool(min(cfg.data.workers, len(jobs))) as pool:
            for done in pool.imap_unordered(_label, jobs):
                bar.update(done)
    bar.close()
    return TriedCandidates.concat([TriedCandidates.load(directory / f"{s}.npz") for s in seeds])


def physics_candidates(
    cfg: ScorerTrainConfig, key: str, split: str, scenes: int, seed: int, progress: bool = True
) -> Candidates:
    """``train_scorer.prepare_candidates`` with physics labels (the default trial settings)."""
    return prepare_tried(cfg, key, split, scenes, seed, progress=progress).candidates("physics")
