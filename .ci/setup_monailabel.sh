#!/usr/bin/env bash
# Builds the environment of the MONAI Label app (monailabel_app/) and its tests (tests/monailabel, marker
# `monailabel`).
#
# Why a separate venv: monailabel 0.8.5 needs numpy<2, pydicom<3, pynetdicom<3 and dicomweb-client 0.60.1,
# which the core environment (numpy 2.x) cannot hold. Installs, non-interactively: torch (CPU, first, so nothing
# pulls a CUDA build), monailabel 0.8.5 with its pins (SAM2_BUILD_CUDA=0: its sam2 dependency builds without
# CUDA), then voxcause itself (editable, with the `samples` extra that the test cases need: nilearn's MNI152
# template), then pytest, requests and psutil for the tests. Skips everything if the venv already works.
# Usage: bash .ci/setup_monailabel.sh [VENV_DIR]   (default: <repo>/.venv-monailabel)
# Then:  <venv>/bin/python -m pytest tests/monailabel -q
# Known: pip reports pydicom-seg 0.4.1 (a monailabel dependency; the app writes DICOM SEG with it for the PACS
# path, monailabel_app/lib/dicomweb.py) wanting jsonschema<4 while voxcause needs jsonschema>=4; it works with
# jsonschema 4 (tests/monailabel/test_dicomweb.py). The PACS tests also need Orthanc: .ci/setup_orthanc.sh.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.venv-monailabel}"
python="${PYTHON:-python3}"
constraints="$repo/.ci/constraints.txt"
# voxcause and torch are only located (not imported): importing them is slow and a core bug must not trigger a
# reinstall here.
check='import importlib.util as u, importlib.metadata as m, numpy, monailabel, fastapi, requests, psutil, pytest, nilearn
assert m.version("monailabel") == "0.8.5", m.version("monailabel")
assert numpy.__version__.startswith("1."), numpy.__version__
assert u.find_spec("torch") and u.find_spec("voxcause"), "torch or voxcause missing"'
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "setup_monailabel: $venv already has monailabel 0.8.5 and voxcause"
    exit 0
fi
start=$(date +%s)
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade pip
"${pip[@]}" install --quiet -c "$constraints" torch==2.13.0
SAM2_BUILD_CUDA=0 "${pip[@]}" install --quiet -c "$constraints" \
    monailabel==0.8.5 'pydicom<3' 'pynetdicom<3' 'dicomweb-client[gcp]==0.60.1'
# voxcause with the samples extra; numpy stays below 2 for monailabel.
"${pip[@]}" install --quiet -c "$constraints" 'numpy<2' -e "$repo[samples]"
"${pip[@]}" install --quiet -c "$constraints" 'numpy<2' pytest requests psutil
"$venv/bin/python" -c "$check; print('setup_monailabel: monailabel', m.version('monailabel'), 'numpy', numpy.__version__)"
echo "setup_monailabel: built $venv in $(( $(date +%s) - start )) s"
