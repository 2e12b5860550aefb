"""``pip install .`` carries every file the default model needs: the wheel built from the
sources holds the whole weights folder (grasp_scorer/ and describe/ included) and the share
files (msg/, srv/, config/, launch/), and an install of it finds its share folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test uses the wheel built once (pip wheel)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (
    "setup.py",
    "pyproject.toml",
    "README.md",
    "package.xml",
    "requirements.txt",
    "requirements-test.txt",
)
FOLDERS = ("grasp_semantics", "msg", "srv", "launch", "config", "resource")


def tracked_files(folder: str) -> set[str]:
    """Files under ``folder`` as git has them (or on disk outside a checkout)."""
    listed = subprocess.run(
        ["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if listed.returncode == 0 and listed.stdout.strip():
        return set(listed.stdout.split())
    return {
        str(p.relative_to(ROOT))
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (setuptools' build/ stays out of the tree)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        shutil.copy(ROOT / name, src / name)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (found,) = out.glob("grasp_semantics-*.whl")
    return found


def test_wheel_holds_the_whole_weights_folder(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    weights = tracked_files("grasp_semantics/weights")
    assert any("/grasp_scorer/" in w for w in weights) and any("/describe/" in w for w in weights)
    assert weights - names == set()


def test_wheel_holds_the_share_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.data/data/share/grasp_semantics"
    for folder in ("msg", "srv", "config", "launch"):
        expected = {f"{data}/{path}" for path in tracked_files(folder)}
        assert expected and expected - names == set(), folder
    assert f"{data}/package.xml" in names


def test_an_install_of_the_wheel_finds_its_share_folder(wheel: Path, tmp_path) -> None:
    prefix = tmp_path / "prefix"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--ignore-installed", "--no-compile",
         "--disable-pip-version-check", "-q", "--prefix", str(prefix), str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (site,) = prefix.glob("lib/python*/site-packages")
    code = "from grasp_semantics.share import share_directory; print(share_directory())"
    found = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()) == prefix / "share/grasp_semantics"
    assert (site / "grasp_semantics/weights/default/grasp_scorer/model.safetensors").is_file()
