#!/usr/bin/env bash
# The core's tests as a pip user without ROS runs them: a virtual environment of its own
# (.venv-noros) with torch 2.13.0 installed as scripts/setup.sh installs it, then
# `pip install .[test]` (no rclpy, no ROS wheels, no message build), then `pytest -m "not ros"`
# from the repository root. Fails when `pip install .` pulls in ROS or a core test needs it.
# Extra arguments go to pytest. Like setup.sh it reinstalls the dependencies only when
# requirements.txt, requirements-test.txt or setup.py changed; the package itself every time.
#
# Environment: PYTHON (interpreter for the venv, default python3.11), NOROS_VENV (default
# .venv-noros), FRESH=1 (delete that venv first, as CI on a fresh clone has it).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NOROS_VENV:-$repo/.venv-noros}"
python="${PYTHON:-python3.11}"
unset PYTHONPATH AMENT_PREFIX_PATH  # a sourced ROS install must not leak in
say() { printf '[no-ros] %s\n' "$*"; }
pip_install() {  # quiet, log kept in the venv and shown on failure; no .pyc (CPU time)
    "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
        --no-compile "$@" \
        >>"$venv/pip.log" 2>&1 || { tail -n 30 "$venv/pip.log" >&2; exit 1; }
}

[[ "${FRESH:-0}" == 1 ]] && rm -rf "$venv"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
    say "created $venv ($("$venv/bin/python" --version))"
fi
deps_key="$(cat "$repo/requirements.txt" "$repo/requirements-test.txt" "$repo/setup.py" \
    | sha256sum | cut -c1-16)"
if [[ "$(cat "$venv/.stamp-deps" 2>/dev/null)" != "$deps_key" ]]; then
    say "installing torch==2.13.0, then .[test] with its dependencies ..."
    pip_install torch==2.13.0
    pip_install "$repo[test]"
    printf '%s' "$deps_key" >"$venv/.stamp-deps"
fi
say "installing the package from the working tree (pip install --no-deps .)"
pip_install --no-deps --force-reinstall "$repo"

# What this run must not have: any ROS Python package, or the generated interfaces.
"$venv/bin/python" -I - <<'EOF'
import importlib.util
import sys

found = [m for m in ("rclpy", "rosidl_runtime_py", "std_msgs") if importlib.util.find_spec(m)]
if found:
    sys.exit(f"[no-ros] pip install .[test] brought ROS in: {found}")
import grasp_semantics

if importlib.util.find_spec("grasp_semantics.msg"):
    sys.exit("[no-ros] grasp_semantics.msg exists in a pip install: a message build ran")
print(f"[no-ros] no rclpy, no grasp_semantics.msg; package at {grasp_semantics.__path__[0]}")
EOF

cd "$repo"
say "pytest -m \"not ros\" $*"
exec "$venv/bin/python" -m pytest -m "not ros" "$@"
