"""``grasp-semantics show-trial``: a physics trial drawn to PNG frames, to see why it held.

    grasp-semantics show-trial --split test_instance --seed 3 --method ground_truth --out trial/

The scene of ``(seed, split)`` is generated, the ``--grasp``-th grasp of ``--method`` (the
scene's ground truth, or the model's ranking) is tried in MuJoCo, and the frames at the end of
the approach, the closing and the lift (and after the shake) are rendered with MuJoCo's
offscreen renderer, looking across the closing axis at the gripper. Headless machines render
through EGL (``MUJOCO_GL=egl``, Mesa's software rasteriser when there is no GPU; the default
here unless ``MUJOCO_GL`` is set): it must be chosen before MuJoCo is first imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import mujoco
import numpy as np
from PIL import Image

from grasp_semantics.data.splits import SPLITS
from grasp_semantics.physics.trial import SceneSpec, TrialResult, TrialWorld

FRAMES = ("approach", "closed", "lifted", "shaken")
METHODS = ("ground_truth", "model")


def render_trial(
    world: TrialWorld,
    pose: np.ndarray,
    width: float,
    size: tuple[int, int] = (640, 480),
    distance: float = 0.45,
) -> tuple[TrialResult, dict[str, np.ndarray]]:
    """Run the trial of ``pose`` (world frame) / ``width`` and render ``FRAMES``: the result
    and the RGB images [H, W, 3] by phase name."""
    closing = np.asarray(pose)[:3, 0]
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.distance = distance
    # look across the closing axis, from above, so both fingers and the object show
    camera.azimuth = float(np.degrees(np.arctan2(closing[1], closing[0]))) + 90.0
    camera.elevation = -25.0
    frames: dict[str, np.ndarray] = {}
    renderer = mujoco.Renderer(world.model, height=size[1], width=size[0])
    try:

        def snap(name: str, data: mujoco.MjData) -> None:
            if name in FRAMES:
                camera.lookat[:] = data.mocap_pos[0]
                renderer.update_scene(data, camera)
                frames[name] = renderer.render().copy()

        result = world.run(pose, width, on_phase=snap)
    finally:
        renderer.close()
    return result, frames


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--split", default="test_instance", choices=SPLITS, help="scene split")
    parser.add_argument("--seed", type=int, default=0, help="scene seed")
    parser.add_argument("--method", choices=METHODS, default="ground_truth")
    parser.add_argument("--model", default="default", help="model (with --method model)")
    parser.add_argument("--grasp", type=int, default=0, help="rank of the grasp to try")
    parser.add_argument("--out", type=Path, default=Path("trial"), help="folder for the PNGs")
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))


def run(args: argparse.Namespace, command: str) -> int:
    from grasp_semantics.data.scene import generate_scene

    scene = generate_scene(args.seed, args.split)
    if args.method == "model":
        from grasp_semantics.inference.predictor import GraspPredictor

        predictor = GraspPredictor.from_pretrained(args.model)
        p = predictor.predict(scene.rgb, scene.points, scene.instruction, scene.intrinsics)
        poses, widths = p.poses, p.widths
    else:
        poses, widths = scene.grasps, scene.grasp_widths
    if not 0 <= args.grasp < len(poses):
        print(f"show-trial: {args.method} has {len(poses)} grasps, no grasp {args.grasp}")
        return 2
    spec = SceneSpec.of(scene)
    world = TrialWorld(spec)
    pose = spec.to_world(poses[args.grasp])
    result, frames = render_trial(world, pose, float(widths[args.grasp]), tuple(args.size))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, image in frames.items():
        Image.fromarray(image).save(args.out / f"{name}.png")
    summary = {"instruction": scene.instruction, "method": args.method, "grasp": args.grasp}
    summary.update(asdict(result))
    (args.out / "trial.json").write_text(json.dumps(summary, indent=2))
    print(f'"{scene.instruction}": {args.method} grasp {args.grasp} -> {result.outcome}')
    print(
        f"rise {result.rise_final:.3f} m, tilt {result.tilt_deg:.0f} deg, "
        f"frames {', '.join(frames)} in {args.out}"
    )
    return 0
