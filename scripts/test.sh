#!/usr/bin/env bash
# Installs everything the tests need and runs them: the core environment (.venv), the MONAI Label app's own
# environment (.venv-monailabel: monailabel 0.8.5 needs numpy<2), the Slicer-module environment
# (.venv-slicer: slicer-core pins vtk) and, only with VOXCAUSE_TEST_LLM=1, the slow local-LLM tier (.venv-llm:
# llama-cpp-python builds from source in ~7 min, then a real SmolLM2 server is started; without the opt-in its
# test is skipped with that reason). Exits non-zero if any tier fails.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
status=0
run() { echo "== $*"; "$@" || status=1; }
set -e
bash scripts/setup.sh
set +e
run .venv/bin/ruff check core tests bench scripts monailabel_app slicer_extension
if [ "${VOXCAUSE_TEST_LLM:-0}" = "1" ] && [ -f .ci/setup_llm.sh ]; then run bash .ci/setup_llm.sh; fi
run .venv/bin/python -m pytest -q -p no:cacheprovider -m "not monailabel and not slicer" tests
if [ -f .ci/setup_monailabel.sh ] && [ -d tests/monailabel ]; then
    run bash .ci/setup_orthanc.sh  # Debian's orthanc + orthanc-dicomweb for the PACS round trip (root)
    if run bash .ci/setup_monailabel.sh; then
        run bash .ci/setup_browser.sh  # Debian's Chromium + Playwright for the OHIF browser test
        run .venv-monailabel/bin/python -m pytest -q -p no:cacheprovider tests/monailabel
    fi
fi
if [ -f .ci/setup_slicer.sh ] && [ -d tests/slicer ]; then
    run bash .ci/setup_slicer.sh && QT_QPA_PLATFORM=offscreen run .venv-slicer/bin/python -m pytest -q -p no:cacheprovider tests/slicer
fi
exit $status
