"""Command-line jobs of the data package: ``generate``, ``make-bag`` and ``show``.

Run through ``grasp_semantics.cli`` (``add_arguments(parser, name)`` / ``run(args, name)``):
``grasp-semantics generate --scenes 100 --seed 0 --out DIR``; ``--objects FOLDER`` takes the
objects, parts, task table and wordings from a mesh folder (``docs/mesh_folder.md``) instead of
the procedural world.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from grasp_semantics.data.splits import SPLITS, split_pools

COMMANDS = ("generate", "make-bag", "show")


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """Add the arguments of command ``name`` to ``parser``."""
    parser.add_argument("--seed", type=int, default=0, help="first scene seed")
    parser.add_argument(
        "--split", choices=SPLITS, default="train" if name == "generate" else "all"
    )
    parser.add_argument(
        "--objects",
        type=Path,
        help="a mesh folder (objects.yaml + one mesh per part) to draw objects from, "
        "instead of the procedural ones (docs/mesh_folder.md)",
    )
    if name == "generate":
        parser.add_argument("--scenes", type=int, required=True, help="number of scenes")
        parser.add_argument("--out", required=True, help="output directory (shards + index.json)")
        parser.add_argument("--scenes-per-shard", type=int, default=256)
        parser.add_argument("--workers", type=int, default=1, help="generator processes")
    elif name == "make-bag":
        parser.add_argument("--scenes", type=int, default=10)
        parser.add_argument("--out", required=True, help="bag directory to create")
        parser.add_argument("--period", type=float, default=0.5, help="seconds between scenes")
    elif name == "show":
        parser.add_argument("--out", required=True, help="PNG file")
        parser.add_argument("--grasps", type=int, default=5, help="ground-truth grasps to draw")
    else:
        raise ValueError(f"unknown data command {name!r}")


def run(args: argparse.Namespace, name: str) -> int:
    """Run command ``name``; returns the exit status."""
    from grasp_semantics.data.catalogue import catalogue
    from grasp_semantics.data.scene import generate_scene

    t0 = time.perf_counter()
    objects = None
    if args.objects is not None:
        try:
            objects = catalogue(args.objects)
            split_pools(args.split, objects)  # a split the folder cannot fill fails here
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if name == "generate":
        from grasp_semantics.data.scene_shards import write_scene_shards

        index = write_scene_shards(
            args.out,
            args.scenes,
            args.seed,
            args.split,
            args.scenes_per_shard,
            workers=args.workers,
            progress=True,
            catalogue=objects,
        )
        print(
            json.dumps(
                {
                    "index": str(index),
                    "scenes": args.scenes,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
        )
    elif name == "make-bag":
        from grasp_semantics.data.bag import write_bag

        if Path(args.out).exists():
            print(f"error: {args.out} exists", file=sys.stderr)
            return 1
        scenes = (
            generate_scene(args.seed + i, args.split, catalogue=objects)
            for i in range(args.scenes)
        )
        write_bag(args.out, scenes, period_s=args.period)
        print(
            json.dumps(
                {
                    "bag": args.out,
                    "scenes": args.scenes,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
        )
    elif name == "show":
        from grasp_semantics.data.visualize import save_scene_png

        scene = generate_scene(args.seed, args.split, catalogue=objects)
        save_scene_png(scene, args.out, args.grasps)
        print(json.dumps({"png": args.out, "instruction": scene.instruction}))
    return 0
