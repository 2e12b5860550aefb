"""``grasp-semantics``: the package's command line.

Each sub-command lives in its own module and is imported only when it runs, so
``grasp-semantics --help`` is quick and commands that need no ROS (generate, train, evaluate,
bench) work in a pip install without ROS.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module with add_arguments(parser) and run(args) -> int, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("grasp_semantics.ros.demo", "replay the sample bag through the node, write outputs"),
    "replay": ("grasp_semantics.ros.replay", "play a bag through the node, record its outputs"),
    "bench": ("grasp_semantics.benchmarks.bench", "per-stage latency and memory, printed as JSON"),
    "generate": ("grasp_semantics.data.generate_cli", "write synthetic scenes as dataset shards"),
    "make-bag": (
        "grasp_semantics.data.generate_cli",
        "write synthetic scenes as a rosbag2 (mcap)",
    ),
    "show": (
        "grasp_semantics.data.generate_cli",
        "render a synthetic scene with its labels to PNG",
    ),
    "show-trial": (
        "grasp_semantics.evaluation.show_trial",
        "render a MuJoCo grasp trial to PNG frames",
    ),
    "train": (
        "grasp_semantics.training.train_grasp_net",
        "train a model from a YAML config (torchrun-ready)",
    ),
    "evaluate": (
        "grasp_semantics.evaluation.evaluate",
        "contact, part and grasp metrics with baselines",
    ),
    "train-scorer": ("grasp_semantics.training.train_scorer", "train the grasp scorer of a model"),
    "describe": (
        "grasp_semantics.inference.scene_questions",
        "caption, OCR or VQA on an image (same backbone)",
    ),
    "train-describe": (
        "grasp_semantics.training.train_describe",
        "train the describe head of a model",
    ),
    "export-objects": (
        "grasp_semantics.data.mesh_folder",
        "write the procedural objects as a mesh folder (one mesh per part + objects.yaml)",
    ),
    "train-recipe": (
        "grasp_semantics.training.recipe",
        "every training stage of a model in order (config/recipe_default.yaml), resumable",
    ),
    "evaluate-describe": (
        "grasp_semantics.evaluation.evaluate_describe",
        "held-out caption / OCR / VQA exact match and token F1",
    ),
    "stress": (
        "grasp_semantics.ros.stress",
        "generated malformed and valid input against a node subprocess, outcomes as JSON",
    ),
    "soak": (
        "grasp_semantics.ros.soak",
        "stream the sample bag through a node subprocess for minutes: RSS, latency, drops",
    ),
    "lifecycle-cycle": (
        "grasp_semantics.ros.soak",
        "cycle a node subprocess through its lifecycle N times, RSS after each cleanup",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grasp-semantics",
        description="Language-conditioned functional grasping: tools around the ROS 2 node.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0].startswith("-"):
        parser.parse_args(argv)  # prints help or usage
        return 0
    name = argv[0]
    if name not in COMMANDS:
        parser.parse_args(argv)  # exits with "invalid choice"
    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as error:  # a pip install without ROS has the other commands
        if not COMMANDS[name][0].startswith("grasp_semantics.ros."):
            raise
        parser.exit(
            2,
            f"grasp-semantics {name}: needs ROS 2 (rclpy and the generated grasp_semantics.msg)"
            f" and {error.name!r} does not import. scripts/setup.sh installs them from PyPI"
            " wheels; on a robot, source ROS 2 and build the package with colcon.\n",
        )
    sub = argparse.ArgumentParser(prog=f"grasp-semantics {name}", description=COMMANDS[name][1])
    module.add_arguments(sub, name)
    args = sub.parse_args(argv[1:])
    return int(module.run(args, name) or 0)


if __name__ == "__main__":
    sys.exit(main())
