#!/usr/bin/env bash
# Builds the environment of the MONAI Label app (monailabel_app/) and its tests (tests/monailabel, marker
# `monailabel`).
#
# Why a separate venv: monailabel 0.8.5 needs numpy<2, pydicom<3, pynetdicom<3 and dicomweb-client 0.60.1,
# which the core environment (numpy 2.x) cannot hold. Installs, non-interactively: torch (CPU, first, so nothing
# pulls a CUDA build), monailabel 0.8.5 with its pins (SAM2_BUILD_CUDA=0: its sam2 dependency builds without
# CUDA), then voxcause itself (editable, with the `samples` extra that the test cases need: nilearn's MNI152
# template), then pytest, requests and psutil for the tests, then nnU-Net v2 (the app serves nnU-Net results
# folders as its segmenter; tests/monailabel/test_nnunet_app.py). Skips everything if the venv already works;
# a working venv that only lacks nnU-Net gets nnU-Net installed into it (not rebuilt).
# Usage: bash .ci/setup_monailabel.sh [VENV_DIR]   (default: <repo>/.venv-monailabel); users run
# scripts/setup_monailabel.sh, which calls this and says what to do next.
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
assert u.find_spec("torch") and u.find_spec("voxcause"), "torch or voxcause missing"
assert m.version("pydicom").startswith("2."), m.version("pydicom")'
# nnU-Net v2 and the dependencies its inference imports (located, not imported: nnunetv2 imports torch)
check_nnunet='import importlib.util as u, importlib.metadata as m
assert m.version("nnunetv2") == "2.8.0", m.version("nnunetv2")
assert all(u.find_spec(name) for name in ("dynamic_network_architectures", "acvl_utils", "batchgenerators",
           "batchgeneratorsv2", "blosc2", "einops", "yacs", "nibabel", "pandas", "sklearn")), "an nnU-Net dependency is missing"'
# highdicom 0.22, the last release for pydicom 2: the app writes the explanation's DICOM SEG and Parametric Maps
# (voxcause.io.dicom_out) and stores them in the PACS (lib/dicomweb.py)
check_dicom='import importlib.metadata as m
assert m.version("highdicom") == "0.22.0", m.version("highdicom")'
pip=("$venv/bin/python" -m pip)
# An environment that already holds pydicom 3 or numpy 2 (e.g. voxcause[dicom] installed beside monailabel) is
# refused with the reason, not silently downgraded under what put them there: monailabel_app/check_environment.py
if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" "$repo/monailabel_app/check_environment.py" --conflicts; then
    echo "setup_monailabel: not changing $venv (use another VENV_DIR, or fix it as said above)" >&2
    exit 2
fi
install_dicom() {
    "${pip[@]}" install --quiet -c "$constraints" 'numpy<2' 'pydicom<3' highdicom==0.22.0
}
# nnU-Net v2 without timm/torchvision: --no-deps for nnunetv2 and its network library, whose timm dependency pulls
# torchvision, which fails to import beside the CPU torch pin (the U-Nets nnU-Net plans never import timm); then
# the rest of their dependencies, numpy and pydicom held below 2 and 3 for monailabel (as scripts/setup.sh does for
# the core venv).
install_nnunet() {
    "${pip[@]}" install --quiet --no-deps -c "$constraints" nnunetv2==2.8.0 dynamic-network-architectures==0.4.4
    "${pip[@]}" install --quiet -c "$constraints" 'numpy<2' 'pydicom<3' "acvl-utils>=0.2.6,<0.3" \
        "batchgenerators>=0.25.1" "batchgeneratorsv2>=0.3.2" "blosc2>=3.3.2" einops yacs seaborn imagecodecs graphviz \
        pandas scikit-learn nibabel
}
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
    if "$venv/bin/python" -c "$check_nnunet
$check_dicom" 2>/dev/null; then
        echo "setup_monailabel: $venv already has monailabel 0.8.5, voxcause, nnU-Net v2 and highdicom"
        exit 0
    fi
    start=$(date +%s)
    "$venv/bin/python" -c "$check_nnunet" 2>/dev/null || install_nnunet
    "$venv/bin/python" -c "$check_dicom" 2>/dev/null || install_dicom
    "$venv/bin/python" -c "$check; $check_nnunet
$check_dicom
print('setup_monailabel: added nnunetv2', m.version('nnunetv2'), 'highdicom', m.version('highdicom'), 'numpy', numpy.__version__, 'pydicom', m.version('pydicom'))"
    echo "setup_monailabel: updated $venv in $(( $(date +%s) - start )) s"
    exit 0
fi
start=$(date +%s)
"$python" -m venv "$venv"
"${pip[@]}" install --quiet --upgrade pip
"${pip[@]}" install --quiet -c "$constraints" torch==2.13.0
SAM2_BUILD_CUDA=0 "${pip[@]}" install --quiet -c "$constraints" \
    monailabel==0.8.5 'pydicom<3' 'pynetdicom<3' 'dicomweb-client[gcp]==0.60.1'
# voxcause with the samples extra; numpy stays below 2 for monailabel.
"${pip[@]}" install --quiet -c "$constraints" 'numpy<2' -e "$repo[samples]"
"${pip[@]}" install --quiet -c "$constraints" 'numpy<2' pytest requests psutil
install_nnunet
install_dicom
"$venv/bin/python" -c "$check; $check_nnunet
$check_dicom
print('setup_monailabel: monailabel', m.version('monailabel'), 'nnunetv2', m.version('nnunetv2'), 'numpy', numpy.__version__,
      'pydicom', m.version('pydicom'))"
echo "setup_monailabel: built $venv in $(( $(date +%s) - start )) s"
