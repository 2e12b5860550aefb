"""The grasp-semantics command line: every sub-command parses, unknown ones are refused."""

from __future__ import annotations

import pytest

from grasp_semantics.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
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


def test_show_writes_a_picture(tmp_path) -> None:
    out = tmp_path / "scene.png"
    assert main(["show", "--seed", "3", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
