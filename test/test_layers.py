"""The package's layers (docs/architecture.md): which folder may import which, read from the
source with ``ast``, and the core importable with every ROS module blocked."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "grasp_semantics"

# layer -> the layers its modules may import (besides itself and ``share``). Everything else is
# an arrow from a lower layer back up, or across to a sibling it must not know.
ALLOWED: dict[str, set[str]] = {
    "models": set(),
    "grasping": {"models"},
    "data": {"models", "grasping"},
    "physics": {"models", "grasping", "data"},
    "inference": {"models", "grasping"},
    "evaluation": {"models", "grasping", "data", "physics", "inference"},
    "training": {"models", "grasping", "data", "physics", "inference", "evaluation"},
    "ros": {"models", "grasping", "data", "inference", "evaluation", "msg", "srv"},
    "benchmarks": {"models", "grasping", "data", "inference", "evaluation", "ros"},
}
TOP_LEVEL = {"cli", "share"}  # the command dispatcher (imports lazily) and share-dir lookup
ROS_MODULES = ("rclpy", "rosidl_runtime_py", "sensor_msgs", "std_msgs", "geometry_msgs")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute, at any depth (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (use absolute imports)"
            names.add(node.module or "")
            if node.module == "grasp_semantics":
                names.update(f"grasp_semantics.{alias.name}" for alias in node.names)
    return names


def test_every_folder_is_a_known_layer() -> None:
    layers = {layer_of(p) for p in modules()} - {"__init__"}
    assert layers == set(ALLOWED) | TOP_LEVEL


def test_no_import_runs_from_a_lower_layer_back_up() -> None:
    wrong = []
    for path in modules():
        layer = layer_of(path)
        if layer in TOP_LEVEL or layer == "__init__":
            continue
        for name in imported(path):
            parts = name.split(".")
            if parts[0] != "grasp_semantics" or len(parts) < 2:
                continue
            target = parts[1]
            if target not in {layer, "share"} and target not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_layer_rules_reject_an_upward_import(tmp_path: Path) -> None:
    """The check above can fail: a models module importing inference is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from grasp_semantics.inference.predictor import GraspPredictor\n")
    assert "grasp_semantics.inference.predictor" in imported(bad)
    assert "inference" not in ALLOWED["models"]


def test_only_ros_imports_ros() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules()
        if layer_of(path) != "ros"
        for name in imported(path)
        if name.split(".")[0] in ROS_MODULES
    ]
    assert not wrong, "\n".join(wrong)


def test_no_module_name_is_shared_by_two_layers() -> None:
    seen: dict[str, Path] = {}
    for path in modules():
        if path.name == "__init__.py":
            continue
        other = seen.setdefault(path.stem, path)
        assert other == path, f"{other.relative_to(ROOT)} and {path.relative_to(ROOT)}"


MAX_MODULE_LINES = 600  # longer modules split along their seams (issue 31)


def test_no_module_is_longer_than_600_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


@pytest.mark.slow
def test_core_modules_import_without_ros() -> None:
    core = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in modules()
        if layer_of(path) != "ros" and path.name != "__init__.py"
    ]
    blocker = (
        "import sys\n"
        f"for name in {ROS_MODULES!r}:\n"
        "    sys.modules[name] = None  # any import of them now fails\n"
        f"import importlib\nfor module in {core!r}:\n    importlib.import_module(module)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocker], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(core) > 20
