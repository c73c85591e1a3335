#!/usr/bin/env bash
# Starts voxcause's MONAI Label server after checking its environment (monailabel_app/check_environment.py: with
# pydicom 3 or numpy 2 MONAI Label cannot even import, so the reason is given here, before it tries).
# Usage: bash scripts/start_monailabel.sh STUDIES [start_server options ...]
#   STUDIES   a folder of images (every *.nii.gz / *.nrrd there is a case) or a DICOMweb URL (http(s)://.../dicom-web)
#   Defaults: --conf models all --host 127.0.0.1 --port 8000 (this machine only); options given after STUDIES
#   override them, e.g. --port 8001, or --host 0.0.0.0 for a server others reach (then with the shared settings).
# Environment:
#   VOXCAUSE_ML_VENV      the server's environment (default <repo>/.venv-monailabel; scripts/setup_monailabel.sh)
#   VOXCAUSE_ML_SETTINGS  a settings file loaded first, e.g. monailabel_app/shared-server.env (sign-in on, CORS
#                         limited to your viewers) for a server several people share
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VOXCAUSE_ML_VENV:-$repo/.venv-monailabel}"
if [ $# -lt 1 ]; then
    echo "usage: bash scripts/start_monailabel.sh STUDIES [start_server options ...] — STUDIES is a folder of images or a DICOMweb URL" >&2
    exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "start_monailabel: no MONAI Label environment at $venv — run bash scripts/setup_monailabel.sh first" >&2
    exit 2
fi
"$venv/bin/python" "$repo/monailabel_app/check_environment.py" || exit 2
if [ -n "${VOXCAUSE_ML_SETTINGS:-}" ]; then
    set -a
    # shellcheck disable=SC1090
    . "$VOXCAUSE_ML_SETTINGS"
    set +a
fi
studies="$1"
shift
exec "$venv/bin/python" -m monailabel.main start_server --app "$repo/monailabel_app" --studies "$studies" \
    --conf models all --host 127.0.0.1 --port 8000 "$@"
