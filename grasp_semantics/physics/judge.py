"""Physics trials of many grasps in worker processes, for ``evaluate --physics``.

Work is handed out one scene at a time (its ``SceneSpec`` and the grasps of each method, in the
world frame): a worker compiles the scene once and tries every grasp on a fresh state, so the
main process can go on predicting while the trials run. Workers are spawned, not forked: the
main process holds torch's threads.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict

import numpy as np

from grasp_semantics.models.config import GripperConfig
from grasp_semantics.physics.trial import SceneSpec, TrialConfig, TrialWorld

Grasps = dict[str, tuple[np.ndarray, np.ndarray]]  # method -> (world poses [K,4,4], widths [K])


def try_scene(
    spec: SceneSpec, grasps: Grasps, gripper: GripperConfig, config: TrialConfig
) -> dict:
    """Every grasp of ``grasps`` tried on the scene: per method a list of trial results
    (as dicts), the seconds spent building the scene (convex pieces, compiling) and trying."""
    started = time.perf_counter()
    world = TrialWorld(spec, gripper, config)
    built = time.perf_counter()
    trials = {
        method: [asdict(world.run(pose, float(width))) for pose, width in zip(*g, strict=True)]
        for method, g in grasps.items()
    }
    return {
        "trials": trials,
        "build_seconds": built - started,
        "seconds": time.perf_counter() - built,
    }


class Judge:
    """A pool of ``workers`` processes trying scenes' grasps (``workers`` 0: in this process)."""

    def __init__(
        self,
        workers: int = 2,
        gripper: GripperConfig | None = None,
        config: TrialConfig | None = None,
    ) -> None:
        self.gripper = gripper or GripperConfig()
        self.config = config or TrialConfig()
        self.pool = (
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            if workers > 0
            else None
        )
        self.pending: list[tuple[object, Future | dict]] = []

    def submit(self, key: object, spec: SceneSpec, grasps: Grasps) -> None:
        """Queue the trials of one scene; ``key`` comes back with its results."""
        args = (spec, grasps, self.gripper, self.config)
        if self.pool is None:
            self.pending.append((key, try_scene(*args)))
        else:
            self.pending.append((key, self.pool.submit(try_scene, *args)))

    def results(self) -> list[tuple[object, dict]]:
        """Every queued scene's results, in submission order (waits for them)."""
        out = [(k, r.result() if isinstance(r, Future) else r) for k, r in self.pending]
        self.pending = []
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ground_truth_rates(
    split: str, scenes: int, seed: int, workers: int = 2, grasps: int = 5
) -> dict:
    """Physics outcomes of the ``grasps`` best ground-truth grasps of ``scenes`` scenes: the
    share of trials that succeed, success@1, and the count of each outcome."""
    from grasp_semantics.data.scene import generate_scene

    started = time.perf_counter()
    with Judge(workers) as judge:
        for i in range(scenes):
            scene = generate_scene(seed + i, split)
            spec = SceneSpec.of(scene)
            poses = spec.to_world(scene.grasps[:grasps])
            judge.submit(i, spec, {"ground_truth": (poses, scene.grasp_widths[:grasps])})
        done = judge.results()
    trials = [[t["outcome"] for t in r["trials"]["ground_truth"]] for _, r in done]
    flat = [o for scene_trials in trials for o in scene_trials]
    return {
        "split": split,
        "scenes": scenes,
        "seed": seed,
        "trial_success": flat.count("success") / len(flat),
        "success_at_1": float(np.mean([t[0] == "success" for t in trials])),
        "outcomes": {name: flat.count(name) for name in sorted(set(flat))},
        "seconds_per_trial": sum(r["seconds"] for _, r in done) / len(flat),
        "build_seconds_per_scene": sum(r["build_seconds"] for _, r in done) / len(done),
        "seconds": time.perf_counter() - started,
    }


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="physics outcomes of ground-truth grasps")
    parser.add_argument("--split", default="val")
    parser.add_argument("--scenes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    cli = parser.parse_args()
    print(json.dumps(ground_truth_rates(cli.split, cli.scenes, cli.seed, cli.workers), indent=2))
