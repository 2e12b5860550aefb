"""The grasp-semantics command line: every sub-command parses, unknown ones are refused."""

from __future__ import annotations

import sys

import pytest

from grasp_semantics.cli import COMMANDS, main

ROS_COMMANDS = {
    c for c, (module, _) in COMMANDS.items() if module.startswith("grasp_semantics.ros.")
}


@pytest.mark.parametrize(
    "command",
    [pytest.param(c, marks=pytest.mark.ros) if c in ROS_COMMANDS else c for c in sorted(COMMANDS)],
)
def test_every_command_has_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"grasp-semantics {command}" in capsys.readouterr().out


def test_unknown_command_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_ros_command_without_ros_says_what_it_needs(monkeypatch, capsys) -> None:
    """Where rclpy does not import (``pip install .`` without ROS) a ROS command exits with a
    message naming it, not an ImportError traceback."""
    assert "replay" in ROS_COMMANDS
    monkeypatch.setitem(sys.modules, "rclpy", None)  # `import rclpy` now fails
    monkeypatch.delitem(sys.modules, "grasp_semantics.ros.replay", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["replay", "--help"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "grasp-semantics replay: needs ROS 2" in error and "'rclpy'" in error


def test_show_writes_a_picture(tmp_path) -> None:
    out = tmp_path / "scene.png"
    assert main(["show", "--seed", "3", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
