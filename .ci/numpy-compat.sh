#!/usr/bin/env bash
# The reproducibility promise across numpy versions (docs/determinism.md): the golden
# vectors pass, bit for bit, under the oldest supported numpy (1.26) and the newest 2.x,
# each with the numba fast path and without it (WEIGHTINIT_DISABLE_NUMBA=1); and the four
# runs print the same sha256 for every golden spec. Each numpy gets its own virtual
# environment with the package installed from pyproject.toml, so the run also proves that
# every runtime dependency (ml_dtypes, numba, safetensors, ...) resolves with that numpy.
#
# Supported range: numpy>=1.26,<3 (pyproject.toml). Usage: bash .ci/numpy-compat.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
TESTS=(tests/core/test_golden.py tests/core/rng/test_kernels.py)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/weightinit-numpy-compat.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# name and numpy requirement; the other packages take what pip resolves beside it.
VARIANTS=(
  "oldest|numpy==1.26.*"
  "newest|numpy>=2,<3"
)

# Prints one line per tensor of every golden spec, then its data section and whole file
# (package version fixed): sha256s from whatever engine path is active.
DIGESTS='
import sys
from weightinit.service.server.settings import Settings
Settings().configure_engine()
sys.path.insert(0, "tests/core")
from golden_specs import GOLDEN_SPECS, digests, plan_of
for name, body in sorted(GOLDEN_SPECS.items()):
    for part, digest in sorted(digests(plan_of(body)).items()):
        print(name, part, digest)
'

setup() {
  local name="$1" numpy_requirement="$2" venv="$WORK/$1"
  "$PYTHON" -m venv "$venv"
  # pip's output (and the build backend's warnings) only when something fails.
  if ! { "$venv/bin/python" -m pip install --upgrade pip &&
         "$venv/bin/python" -m pip install -e ".[fast]" "$numpy_requirement" \
           pytest pytest-timeout; } > "$WORK/pip-$name.log" 2>&1; then
    cat "$WORK/pip-$name.log" >&2
    echo "installing the package with $numpy_requirement failed" >&2
    return 1
  fi
  "$venv/bin/python" - <<'PY'
import importlib.metadata as metadata
print("   ", ", ".join(f"{name} {metadata.version(name)}" for name in
                      ("numpy", "numba", "ml_dtypes", "safetensors", "pydantic")))
PY
}

run() {
  local name="$1" mode="$2" venv="$WORK/$1" disable=0
  [ "$mode" = "numpy-only" ] && disable=1
  # Kernels compiled against this numpy, not loaded from another environment's cache.
  export NUMBA_CACHE_DIR="$venv/numba-cache"
  echo "== numpy $name, $mode"
  WEIGHTINIT_DISABLE_NUMBA="$disable" "$venv/bin/python" - <<'PY'
import sys
from weightinit.core.rng import kernels
from weightinit.service.server.settings import Settings
Settings().configure_engine()
wanted = __import__("os").environ["WEIGHTINIT_DISABLE_NUMBA"] != "1"
if kernels.numba_enabled() != wanted:
    sys.exit(f"numba fast path is {'off' if wanted else 'on'}, expected the opposite")
PY
  WEIGHTINIT_DISABLE_NUMBA="$disable" "$venv/bin/python" -m pytest "${TESTS[@]}" -q \
    -p no:cacheprovider
  WEIGHTINIT_DISABLE_NUMBA="$disable" "$venv/bin/python" -c "$DIGESTS" \
    > "$WORK/digests-$name-$mode.txt"
}

for variant in "${VARIANTS[@]}"; do
  name="${variant%%|*}"
  echo "== setting up numpy $name (${variant#*|})"
  setup "$name" "${variant#*|}"
done
for variant in "${VARIANTS[@]}"; do
  for mode in numba numpy-only; do
    run "${variant%%|*}" "$mode"
  done
done

echo "== the four runs' golden digests agree"
reference="$WORK/digests-oldest-numba.txt"
[ -s "$reference" ] || { echo "no digests written" >&2; exit 1; }
for other in "$WORK"/digests-*.txt; do
  diff -u "$reference" "$other"
done
echo "$(wc -l < "$reference") golden digests, identical bytes under numpy 1.26 and 2.x, with and without numba"
