#!/usr/bin/env bash
# Regenerate the image's lock files (pinned versions + sha256 hashes) with uv.
#   requirements.lock        runtime deps of pyproject.toml + the `fast` extra (numba)
#   requirements-build.lock  the build backend (setuptools) used to build the wheel
# Usage: deploy/lock.sh [--upgrade]      (pip install uv first; run from anywhere)
# The image runs CPython 3.11 on linux, so that is what we resolve for.
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--generate-hashes --python-version 3.11 --python-platform linux
        --no-emit-index-url --custom-compile-command "deploy/lock.sh" "$@")
uv pip compile pyproject.toml --extra fast "${common[@]}" -o requirements.lock
# Same range as [build-system] requires in pyproject.toml.
printf 'setuptools>=68\n' | uv pip compile - "${common[@]}" -o requirements-build.lock
if grep -qiE '^(torch|keras|tensorflow|jax)' requirements.lock; then
    echo "requirements.lock must not contain a deep-learning framework" >&2
    exit 1
fi
