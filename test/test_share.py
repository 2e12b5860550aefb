"""Package files found without a ROS environment: the share folder and shipped configs."""

from __future__ import annotations

import pytest

from grasp_semantics.share import config_file, share_directory


def test_share_directory_holds_the_message_definitions() -> None:
    share = share_directory()
    assert (share / "package.xml").is_file()
    assert {p.name for p in (share / "msg").glob("*.msg")} >= {"Grasp.msg", "GraspPrediction.msg"}


def test_shipped_config_names_resolve_from_any_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    shipped = config_file("config/train_tiny.yaml")
    assert shipped == share_directory() / "config" / "train_tiny.yaml"
    assert config_file("train_scorer_tiny.yaml").is_file()
    (tmp_path / "config").mkdir()
    own = tmp_path / "config" / "train_tiny.yaml"
    own.write_text("model: tiny\n")
    assert config_file("config/train_tiny.yaml").resolve() == own  # the user's own comes first


def test_a_missing_config_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="nor shipped"):
        config_file("config/no_such.yaml")
    with pytest.raises(FileNotFoundError, match="not found"):
        config_file("elsewhere/train_tiny.yaml")  # another folder is not looked up
