"""Layering: the core library imports no ROS (DESIGN.md, "Layers")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for path in (ROOT / "grasp_semantics").rglob("*.py")
    if "ros" not in path.relative_to(ROOT).parts and path.name != "__init__.py"
)


def test_core_modules_import_without_ros() -> None:
    blocker = (
        "import sys\n"
        "for name in ('rclpy', 'sensor_msgs', 'std_msgs', 'geometry_msgs', 'rosidl_runtime_py'):\n"
        "    sys.modules[name] = None  # any import of them now fails\n"
        f"import importlib\nfor module in {CORE!r}:\n    importlib.import_module(module)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocker], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(CORE) > 20
