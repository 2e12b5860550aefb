#!/usr/bin/env bash
# Set up (if needed) and run the main job: the sample bag through the real node with the
# shipped default model, writing predictions, an output bag and pictures to outputs/demo.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/setup.sh"
cd "$repo"
exec .venv/bin/python -m grasp_semantics.cli demo "$@"
