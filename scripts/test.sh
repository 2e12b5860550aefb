#!/usr/bin/env bash
# Set up (if needed), lint, and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/setup.sh"
cd "$repo"
echo "[test] ruff check + format check"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "[test] pytest"
exec .venv/bin/python -m pytest "$@"
