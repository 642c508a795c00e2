#!/usr/bin/env bash
# Installs what tests/e2e/test_ui_browser.py needs to drive the /ui page in a real
# browser: Debian's chromium (the browser, launched by path) and the playwright Python
# package (the driver only: `playwright install` downloads browsers and is never run).
# Idempotent: each step is skipped when its result is already there. Run it inside the
# Python environment the tests use (CI: after activating .venv-ci).
set -euo pipefail

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium
fi

if ! python -c "import playwright.sync_api" 2>/dev/null; then
  echo "== installing playwright (pip, driver only)"
  python -m pip install --quiet playwright
fi

/usr/bin/chromium --version
python -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"
