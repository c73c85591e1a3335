#!/usr/bin/env bash
# Builds the environment for the Slicer-module tests that need real MRML and Qt (tests/slicer, marker `slicer`).
#
# Why a separate venv: slicer-core (3D Slicer's MRML libraries as a wheel, imported as `slicer`) pins its own
# vtk, and PySide6 brings Qt; neither belongs in the core environment. Installs, non-interactively:
# torch (CPU, first, so nothing pulls a CUDA build), slicer-core, PySide6-Essentials (offscreen .ui checks),
# pytest, numpy, SimpleITK, slicerio, pynrrd, then voxcause itself (editable) with its dependencies.
# Usage: bash .ci/setup_slicer.sh [VENV_DIR]   (default: <repo>/.venv-slicer)
# Then:  QT_QPA_PLATFORM=offscreen <venv>/bin/python -m pytest tests/slicer -q
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.venv-slicer}"
python="${PYTHON:-python3}"
constraints="$repo/.ci/constraints.txt"
# voxcause and torch are only located (not imported): importing them is slow and a core bug must not trigger a
# reinstall here.
check='import importlib.util as u, slicer, vtk, PySide6.QtUiTools, slicerio, nrrd, SimpleITK, pytest
assert u.find_spec("torch") and u.find_spec("voxcause"), "torch or voxcause missing"'
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "setup_slicer: $venv already has slicer-core, PySide6 and voxcause"
    exit 0
fi
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade pip
"${pip[@]}" install --quiet -c "$constraints" torch==2.13.0
"${pip[@]}" install --quiet -c "$constraints" slicer-core PySide6-Essentials pytest numpy SimpleITK slicerio pynrrd
# voxcause without its dependency resolution first (so torch stays as installed), then its dependencies.
"${pip[@]}" install --quiet --no-deps -e "$repo"
"${pip[@]}" install --quiet -c "$constraints" -e "$repo[test]"
"$venv/bin/python" -c "$check; print('setup_slicer: slicer-core', slicer.vtkMRMLScene().GetClassName(), 'vtk', vtk.vtkVersion.GetVTKVersion())"
