"""Check that every (task, category) pair of the task table generates scenes.

For each pair of ``data.tasks.PAIRS`` this draws scenes whose target has exactly that pair
(split "all": every instance), the way ``generate_scene`` does (50 draws at most), and reports
the draws needed and the time per scene. Exit status 1 when a pair fails.

    .venv/bin/python scripts/check_objects.py --seeds 2 [--categories kettle jar]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import zlib

import numpy as np

from grasp_semantics.data import scene as scene_lib
from grasp_semantics.data.splits import split_pools
from grasp_semantics.data.tasks import PAIRS


def draws_for_pair(task: str, category: str, seed: int, max_draws: int = 50) -> int | None:
    """Draws ``generate_scene`` would need for a scene of this pair (None: more than
    ``max_draws``)."""
    pools = dataclasses.replace(split_pools("all"), pairs=((task, category),))
    rng = np.random.default_rng([seed, zlib.crc32(f"{task}/{category}".encode())])
    cfg = scene_lib.SceneConfig()
    for draw in range(1, max_draws + 1):
        if scene_lib._attempt(seed, "all", pools, rng, cfg) is not None:
            return draw
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2, help="scenes per pair")
    ap.add_argument("--categories", nargs="*", help="only these categories")
    args = ap.parse_args()
    failed = []
    per_category: dict[str, list[float]] = {}
    for task, cat in PAIRS:
        if args.categories and cat not in args.categories:
            continue
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            draws = draws_for_pair(task, cat, seed)
            dt = time.perf_counter() - t0
            per_category.setdefault(cat, []).append(dt)
            flag = "FAIL" if draws is None else ("slow" if draws > 10 else "")
            print(
                f"{task:>12} {cat:<12} seed {seed}: draws {draws}, {dt:.2f} s {flag}", flush=True
            )
            if draws is None:
                failed.append((task, cat, seed))
    print("\nmean seconds per scene by category:")
    for cat, ts in per_category.items():
        print(f"  {cat:<12} {np.mean(ts):.2f} s over {len(ts)} scenes")
    print(f"\nfailed: {failed}" if failed else "\nall pairs generate")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
