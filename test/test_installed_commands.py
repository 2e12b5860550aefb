"""The README's commands as a user runs them: the installed entry points (``.venv/bin/...``
after scripts/setup.sh), in a subprocess with a clean environment (no PYTHONPATH,
AMENT_PREFIX_PATH, LD_LIBRARY_PATH or VIRTUAL_ENV) and a temporary working directory, each at
a small size. One command runs with the venv activated (its bin/ first on PATH).

Not run here, to keep this near a minute and a half of CPU (each costs 15-70 s of CPU even at
one scene or a few steps on this 2-core CPU): ``bench`` (its code runs in quick mode in
test_bench.py), ``evaluate-describe`` (test_evaluate_describe.py; ``describe`` and ``evaluate``
here load the same files), ``train``, ``train-scorer`` and ``train-describe`` (test_train.py,
test_grasp_scorer.py, test_describe_*.py); their ``--config config/...`` names resolve from any
directory (test_share.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.prefix) / "bin"
TIMEOUT_S = 300

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (BIN / "grasp-semantics").is_file(), reason="no installed copy: run scripts/setup.sh"
    ),
]


def clean_env(home: Path, activated: bool = False) -> dict[str, str]:
    """A login-like environment: no Python or ROS paths; this run's ROS domain (conftest)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"],
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    }
    if activated:  # what `source .venv/bin/activate` changes
        env["PATH"] = f"{BIN}:{env['PATH']}"
        env["VIRTUAL_ENV"] = str(BIN.parent)
    return env


class User:
    """Runs installed commands in one temporary working directory."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        (cwd / "home").mkdir()

    def run(self, *args: str, activated: bool = False) -> subprocess.CompletedProcess:
        program = args[0] if activated else str(BIN / args[0])  # activated: found on PATH
        result = subprocess.run(
            [program, *args[1:]],
            cwd=self.cwd,
            env=clean_env(self.cwd / "home", activated),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> User:
    """The working directory, after checking that the installed copy is the working tree's
    (else this would test an old install)."""
    found = subprocess.run(
        [str(BIN / "python"), "-c", "import grasp_semantics; print(grasp_semantics.__file__)"],
        cwd=tmp_path_factory.getbasetemp(),
        env=clean_env(tmp_path_factory.getbasetemp()),
        capture_output=True,
        text=True,
        check=True,
    )
    installed = Path(found.stdout.strip()).parent
    assert not installed.is_relative_to(ROOT / "grasp_semantics"), "imported the source tree"
    source = ROOT / "grasp_semantics"
    stale = [
        str(path.relative_to(source))
        for path in sorted(source.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and (
            not (installed / path.relative_to(source)).is_file()
            or (installed / path.relative_to(source)).read_bytes() != path.read_bytes()
        )
    ]
    assert not stale, (
        f"the installed copy {installed} differs from the working tree in {len(stale)} files "
        f"({stale[:3]}...): run scripts/setup.sh"
    )
    return User(tmp_path_factory.mktemp("user"))


@pytest.fixture(scope="module")
def scene_png(user: User) -> Path:
    user.run("grasp-semantics", "show", "--seed", "3", "--out", "scene.png")
    return user.cwd / "scene.png"


@pytest.fixture(scope="module")
def scenes_bag(user: User) -> Path:
    # the README's make-bag command, run with the venv activated
    user.run(
        "grasp-semantics", "make-bag", "--scenes", "2", "--seed", "0", "--split",
        "test_instance", "--out", "scenes_bag", activated=True,
    )  # fmt: skip
    return user.cwd / "scenes_bag"


def bag_counts(bag: Path) -> dict[str, int]:
    """Topic -> message count from a rosbag2 directory's metadata."""
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return {
        t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"]
    }


def summary(stdout: str) -> dict[str, str]:
    """The ``key: value`` lines replay prints."""
    return dict(
        (part.strip() for part in line.split(":", 1))
        for line in stdout.splitlines()
        if ":" in line
    )


def test_help_lists_the_commands(user: User) -> None:
    out = user.run("grasp-semantics", "--help").stdout
    assert "replay" in out and "describe" in out


def test_show_writes_a_picture(scene_png: Path) -> None:
    assert scene_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_writes_shards(user: User) -> None:
    user.run(
        "grasp-semantics", "generate", "--scenes", "1", "--seed", "0", "--split", "train",
        "--out", "data/train",
    )  # fmt: skip
    index = json.loads((user.cwd / "data/train/index.json").read_text())
    assert index["n_scenes"] == 1
    assert all((user.cwd / "data/train" / shard["file"]).is_file() for shard in index["shards"])


@pytest.mark.ros
def test_replay_lock_step_predicts_every_pair(user: User, scenes_bag: Path) -> None:
    """The issue's failure: the installed replay needed AMENT_PREFIX_PATH."""
    result = user.run("grasp-semantics", "replay", "scenes_bag", "--out", "predictions_bag")
    figures = summary(result.stdout)
    assert figures["pairs"] == "2" and figures["predictions"] == "2", result.stdout
    counts = bag_counts(user.cwd / "predictions_bag")
    assert counts["/grasp_semantics/prediction"] == 2
    assert counts["/grasp_semantics/markers"] == 2


@pytest.mark.ros
def test_replay_realtime_with_the_venv_activated(user: User, scenes_bag: Path) -> None:
    result = user.run(
        "grasp-semantics", "replay", "scenes_bag", "--out", "realtime_bag", "--realtime",
        activated=True,
    )  # fmt: skip
    figures = summary(result.stdout)
    assert figures["pairs"] == "2" and int(figures["predictions"]) >= 1, result.stdout
    assert bag_counts(user.cwd / "realtime_bag")["/grasp_semantics/prediction"] >= 1


def test_describe_answers_with_the_installed_head(user: User, scene_png: Path) -> None:
    user.run(
        "grasp-semantics", "describe", "--image", "scene.png", "--task", "vqa", "--prompt",
        "How many objects are on the table?", "--format", "json", "--output", "answer.json",
        "--device", "cpu",
    )  # fmt: skip
    answer = json.loads((user.cwd / "answer.json").read_text())
    assert answer["task"] == "vqa" and answer["answer"].strip()
    assert 0.0 < answer["confidence"] <= 1.0


def test_evaluate_writes_metrics(user: User) -> None:
    user.run(
        "grasp-semantics", "evaluate", "--model", "default", "--split", "test_instance",
        "--scenes", "1", "--seed", "0", "--device", "cpu", "--json", "eval.json",
    )  # fmt: skip
    model = json.loads((user.cwd / "eval.json").read_text())["splits"]["test_instance"]["model"]
    assert model["count"] == 1 and 0.0 <= model["part_accuracy"] <= 1.0


@pytest.mark.ros
def test_node_starts_with_the_installed_params_file_and_every_head(user: User) -> None:
    """``grasp_semantics_node --ros-args --params-file <share>/config/grasp_semantics.yaml``
    configures and activates, with the grasp scorer and no missing head reported, and stops
    cleanly on Ctrl-C."""
    params = BIN.parent / "share/grasp_semantics/config/grasp_semantics.yaml"
    node = subprocess.Popen(
        [str(BIN / "grasp_semantics_node"), "--ros-args", "--params-file", str(params)],
        cwd=user.cwd,
        env=clean_env(user.cwd / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        for line in node.stdout:  # the node logs each lifecycle step
            lines.append(line)
            if "active:" in line or "cannot load" in line:
                break
    finally:
        node.send_signal(signal.SIGINT)
        rest, _ = node.communicate(timeout=60)
    log = "".join(lines) + rest
    assert "active:" in log, log
    assert "ranked by its grasp scorer" in log, log
    assert "has no" not in log, log
    assert node.returncode == 0, log
