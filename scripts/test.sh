#!/usr/bin/env bash
# Set up (if needed), lint, and run the whole test suite. Extra arguments go to pytest.
# With CI=true (.ci/run sets it) the suite runs in two parts, each test once: the core's tests
# as a pip user without ROS runs them (scripts/test_without_ros.sh: its own venv, `pip install
# .[test]`, `pytest -m "not ros"`), then the `ros` tests in .venv. Fails if either part fails.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/setup.sh"
cd "$repo"
echo "[test] ruff check + format check"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
if [[ "${CI:-}" == true ]]; then
    status=0
    echo "[test] pytest -m \"not ros\" without ROS (scripts/test_without_ros.sh)"
    scripts/test_without_ros.sh "$@" || status=$?
    echo "[test] pytest -m ros in .venv"
    .venv/bin/python -m pytest -m ros "$@" || status=$?
    exit "$status"
fi
echo "[test] pytest"
exec .venv/bin/python -m pytest "$@"
