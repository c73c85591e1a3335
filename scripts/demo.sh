#!/usr/bin/env bash
# Installs voxcause into .venv and runs the demo: bash scripts/demo.sh [--out DIR]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup.sh"
"${VOXCAUSE_VENV:-$repo/.venv}/bin/voxcause" demo "$@"
