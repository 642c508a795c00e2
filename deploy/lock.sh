#!/usr/bin/env bash
# Regenerate the image's lock files (pinned versions + sha256 hashes) with uv.
#   requirements.lock        runtime deps of pyproject.toml + the `fast` extra (numba)
#   requirements-build.lock  the build backend (setuptools) used to build the wheel
#   requirements-hf.lock     the `[hf]` extra without torch (the image installs torch from
#                            a local CPU wheel, --no-deps): transformers and torch's own
#                            dependencies, constrained to requirements.lock's versions
# Usage: deploy/lock.sh [--upgrade]      (pip install uv first; run from anywhere)
# The image runs CPython 3.11 on linux, so that is what we resolve for.
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--generate-hashes --python-version 3.11 --python-platform linux
        --no-emit-index-url --custom-compile-command "deploy/lock.sh" "$@")
uv pip compile pyproject.toml --extra fast "${common[@]}" -o requirements.lock
# Same range as [build-system] requires in pyproject.toml.
printf 'setuptools>=68\n' | uv pip compile - "${common[@]}" -o requirements-build.lock
# torch's dependencies as its CPU wheel declares them (torch 2.13: no nvidia-* packages).
printf '%s\n' 'transformers>=5.0' filelock 'typing-extensions>=4.10.0' 'sympy>=1.13.3' \
    'networkx>=2.5.1' jinja2 'fsspec>=0.8.5' 'setuptools>=77.0.3' \
    | uv pip compile - -c requirements.lock "${common[@]}" -o requirements-hf.lock
if grep -qiE '^(torch|nvidia|triton)' requirements-hf.lock; then
    echo "requirements-hf.lock must not contain torch or CUDA packages" >&2
    exit 1
fi
if grep -qiE '^(torch|keras|tensorflow|jax)' requirements.lock; then
    echo "requirements.lock must not contain a deep-learning framework" >&2
    exit 1
fi
