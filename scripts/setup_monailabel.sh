#!/usr/bin/env bash
# Builds the environment of voxcause's MONAI Label server, once (about 8 minutes on 2 CPU cores), and says how to
# start it. MONAI Label 0.8.5 needs numpy < 2 and pydicom < 3, so the server gets its own virtual environment,
# beside the core's .venv; CI builds it with the same implementation (.ci/setup_monailabel.sh, from scripts/test.sh).
# An environment holding pydicom 3 or numpy 2 is refused with the reason (monailabel_app/check_environment.py).
# Usage: bash scripts/setup_monailabel.sh [VENV_DIR]    (default: <repo>/.venv-monailabel)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.venv-monailabel}"
bash "$repo/.ci/setup_monailabel.sh" "$venv"
cat <<NEXT

The MONAI Label server's Python is $venv/bin/python. Start the server over a folder of images:
    bash scripts/start_monailabel.sh STUDIES_FOLDER        # http://127.0.0.1:8000, all tasks
then, in 3D Slicer's MONAI Label module, connect to http://127.0.0.1:8000 (README: "3D Slicer <-> MONAI Label server").
NEXT
