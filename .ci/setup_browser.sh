#!/usr/bin/env bash
# Installs what the OHIF browser test (tests/monailabel/test_ohif_browser.py) needs: Debian's headless Chromium
# (apt, root) and Playwright's Python API into the MONAI Label venv. Playwright drives the system browser
# (executable_path=/usr/bin/chromium): its own browser download (`playwright install`) is never run, so nothing
# is fetched beyond the Debian and PyPI registries.
# Idempotent: does nothing when both are present. Without root and without Chromium it says so and exits 0: the
# browser test then skips with that reason.
# Usage: bash .ci/setup_browser.sh [VENV_DIR]   (default: <repo>/.venv-monailabel)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.venv-monailabel}"
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" != "0" ]; then
        echo "setup_browser: Chromium is missing and this is not root — the OHIF browser test will skip (as root: apt-get install -y chromium)" >&2
        exit 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null
        apt-get install -y --no-install-recommends chromium >/dev/null
    }
fi
if ! "$venv/bin/python" -c "import playwright.sync_api" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet -c "$repo/.ci/constraints.txt" 'playwright>=1.40'
fi
echo "setup_browser: $(chromium --version 2>/dev/null | head -1), playwright $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("playwright"))')"
