"""The numba fast path gives the reference's bytes (docs/determinism.md, section 6)."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from weightinit.core.rng import kernels
from weightinit.core.rng.kernels import fill
from weightinit.core.rng.streams import stream_key
from weightinit.core.rng.transforms import Transform, fill_reference, numpy_dtype
from weightinit.core.stats import Moments, moments_of

needs_numba = pytest.mark.skipif(not kernels.numba_enabled(), reason="numba kernel disabled")

TRANSFORMS = {
    "uniform": [
        Transform.uniform(-0.05, 0.05),
        Transform.uniform(7e4, -7e4),  # reversed bounds; overflows float16 to +-inf
    ],
    "normal": [
        Transform.normal(0.0, 0.02),
        Transform.normal(0.0, 1e-6),  # float16 subnormals, float32 exact
        Transform.normal(-3.0, 2e4),  # float16 overflow in the tails
    ],
    "truncated_normal": [
        Transform.truncated_normal(0.0, 0.05, -0.1, 0.1),  # Keras' +-2 sigma
        Transform.truncated_normal(1.0, 2.0, 7.0, 40.0),  # right tail: p near 1
        Transform.truncated_normal(0.0, 1.0, -12.0, -6.0),  # AS241's far branch (r > 5)
    ],
}
DTYPES = ["float64", "float32", "bfloat16", "float16"]
# Empty, tiny, odd starts (lane 1 first), several 1024-element blocks plus a partial one,
# and a counter whose high word is non-zero.
RANGES = [(0, 0), (0, 1), (1, 1), (5, 3), (2, 3), (1, 3000), (12345, 2049), (2**33 + 1, 1500)]


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def close_moments(got: Moments, ref: Moments) -> None:
    """Equal up to float64 rounding of different (both stable) summation orders."""
    assert got.count == ref.count
    assert (got.minimum, got.maximum) == (ref.minimum, ref.maximum)
    scale = abs(ref.mean) + math.sqrt(ref.variance)
    assert abs(got.mean - ref.mean) <= 1e-13 * scale
    assert abs(got.m2 - ref.m2) <= 1e-12 * ref.m2 + 1e-300


@needs_numba
@pytest.mark.parametrize("with_stats", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(TRANSFORMS))
def test_fill_equals_reference(kind: str, dtype: str, with_stats: bool) -> None:
    for n, transform in enumerate(TRANSFORMS[kind]):
        key = stream_key(2024 + n, f"model.{kind}.{n}.weight")
        for start, count in RANGES:
            with np.errstate(over="ignore", invalid="ignore"):
                got, got_m = fill(transform, key, start, count, dtype, with_stats)
                ref, ref_m = fill_reference(transform, key, start, count, dtype, with_stats)
            assert same_bytes(got, ref), (transform, start, count)
            if not with_stats:
                assert got_m is None
            elif count == 0:
                assert got_m == Moments()
            elif np.all(np.isfinite(ref.astype(np.float64))):
                assert got_m is not None and ref_m == moments_of(ref)
                close_moments(got_m, moments_of(ref))


@needs_numba
@pytest.mark.parametrize("kind", list(TRANSFORMS))
def test_large_fill_spanning_many_blocks(kind: str) -> None:
    transform = TRANSFORMS[kind][0]
    key = stream_key(7, f"large.{kind}")
    got, got_m = fill(transform, key, 3, 200_001, "bfloat16", True)
    ref, ref_m = fill_reference(transform, key, 3, 200_001, "bfloat16", True)
    assert same_bytes(got, ref)
    assert got_m is not None and ref_m is not None
    close_moments(got_m, ref_m)


def test_chunked_fills_concatenate_to_one_fill() -> None:
    transform = Transform.normal(0.0, 0.02)
    key = stream_key(3, "chunks")
    whole, whole_m = fill(transform, key, 0, 10_000, "float32", True)
    cuts = [0, 1, 2, 5, 1024, 1025, 3333, 7000, 9999, 10_000]
    pairs = itertools.pairwise(cuts)
    parts = [fill(transform, key, lo, hi - lo, "float32", True) for lo, hi in pairs]
    assert same_bytes(np.concatenate([p for p, _ in parts]), whole)
    merged = Moments()
    for _, m in parts:
        assert m is not None
        merged = merged.merge(m)
    assert whole_m is not None
    close_moments(merged, whole_m)


def test_threads_fill_disjoint_ranges_of_one_buffer() -> None:
    transform = Transform.truncated_normal(0.0, 1.0, -2.0, 2.0)
    key = stream_key(5, "threads")
    out = np.empty(40_000, dtype=np.float32)
    bounds = [(0, 13_001), (13_001, 27_000), (27_000, 40_000)]
    with ThreadPoolExecutor(3) as pool:
        jobs = [pool.submit(fill, transform, key, lo, hi - lo, "float32", False, out[lo:hi])
                for lo, hi in bounds]  # fmt: skip
        for job in jobs:
            job.result()
    assert same_bytes(out, fill_reference(transform, key, 0, 40_000, "float32", False)[0])
    if kernels.numba_enabled():
        assert kernels.load_numba().fill_kernel.targetoptions["nogil"]


@needs_numba
def test_open_uniform_clamp_in_kernel() -> None:
    """The one word whose ``uo`` rounds to 1.0 is clamped like the reference does."""
    from weightinit.core.rng.portable_math import ndtri_array
    from weightinit.core.rng.transforms import open_uniform

    mant = np.array([2**53 - 1, 0, 2**52, 2**53 - 2], dtype=np.int64)
    x, scratch = np.empty(4), [np.empty(4) for _ in range(4)]
    params = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    idx = np.empty(4, dtype=np.uint64)
    fused = kernels.load_numba()
    fused._transform_block(1, params, mant, x, scratch[0], idx, scratch[1], scratch[2])
    ref = ndtri_array(open_uniform(mant.astype(np.uint64) << np.uint64(11)))
    assert np.array_equal(x, ref) and np.all(np.isfinite(x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_buffer(dtype: str) -> None:
    transform, key = Transform.uniform(0.0, 1.0), stream_key(9, "out")
    out = np.zeros((3, 5), dtype=numpy_dtype(dtype))
    result, _ = fill(transform, key, 11, 15, dtype, False, out)
    assert result is out
    assert same_bytes(out.reshape(-1), fill_reference(transform, key, 11, 15, dtype, False)[0])
    for bad in (np.zeros(14, numpy_dtype(dtype)), np.zeros(15, np.int16), np.zeros(30)[::2]):
        with pytest.raises(ValueError):
            fill(transform, key, 0, 15, dtype, False, bad)
    frozen = np.zeros(15, numpy_dtype(dtype))
    frozen.flags.writeable = False
    with pytest.raises(ValueError):
        fill(transform, key, 0, 15, dtype, False, frozen)


def test_argument_validation() -> None:
    transform, key = Transform.uniform(0.0, 1.0), stream_key(9, "args")
    with pytest.raises(ValueError):
        fill(transform, key, -1, 3, "float32")
    with pytest.raises(ValueError):
        fill(transform, key, 0, 3, "int8")


def test_use_numba_false_forces_reference_path() -> None:
    transform, key = Transform.normal(0.0, 1.0), stream_key(1, "fallback")
    kernels.use_numba(False)
    try:
        assert not kernels.numba_enabled()
        got, got_m = fill(transform, key, 3, 500, "bfloat16", True)
        ref, ref_m = fill_reference(transform, key, 3, 500, "bfloat16", True)
        assert same_bytes(got, ref) and got_m is not None and ref_m is not None
        assert got_m == kernels.block_moments(ref, np.array([500]))
        close_moments(got_m, ref_m)
        out = np.empty(500, dtype=numpy_dtype("float16"))
        assert fill(transform, key, 3, 500, "float16", False, out)[0] is out
    finally:
        kernels.use_numba(True)
    assert kernels.numba_enabled() == kernels.HAVE_NUMBA


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_disable_numba_setting_reaches_the_engine(value: str, tmp_path: Path) -> None:
    """``WEIGHTINIT_DISABLE_NUMBA`` is a setting (any boolean spelling), read by the entry
    points and handed to the engine, which reads no environment itself."""
    code = (
        "from weightinit.service.server.settings import Settings; "
        "from weightinit.core.rng import kernels; "
        "assert kernels.numba_enabled() == kernels.HAVE_NUMBA; "
        "Settings().configure_engine(); "
        "assert not kernels.numba_enabled()"
    )
    env = {**os.environ, "WEIGHTINIT_DISABLE_NUMBA": value}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()


RUNS = [([0], [1]), ([5], [3]), ([2], [16]), ([2], [17]), ([3], [1024]), ([1], [3000]),
        ([12345], [2049]), ([0, 5000, 99], [1500, 17, 2048]), ([7], [0]), ([9, 4], [0, 5])]


def exact(m: Moments) -> tuple:
    """The moments' floats as text (NaN equals NaN: overflowing float16 values give NaN
    sums on both paths)."""
    return tuple(repr(v) for v in (m.count, m.mean, m.m2, m.minimum, m.maximum))


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(TRANSFORMS))
def test_both_paths_give_the_same_moments(kind: str, dtype: str) -> None:
    """The reference path's moments are the kernel's floats, not just close to them: a
    report does not depend on whether numba ran (or was loaded yet)."""
    for n, transform in enumerate(TRANSFORMS[kind]):
        key = stream_key(31 + n, f"moments.{kind}.{n}")
        for starts, counts in RUNS:
            runs = (np.array(starts), np.array(counts))
            with np.errstate(over="ignore", invalid="ignore"):
                fast, fast_m = kernels.fill_runs(transform, key, *runs, dtype, True)
                kernels.use_numba(False)
                try:
                    slow, slow_m = kernels.fill_runs(transform, key, *runs, dtype, True)
                finally:
                    kernels.use_numba(True)
            assert same_bytes(fast, slow)
            assert fast_m is not None and slow_m is not None
            assert exact(fast_m) == exact(slow_m), (transform, dtype, starts, counts)


@needs_numba
def test_moment_blocks_are_the_kernels() -> None:
    assert kernels.BLOCK == kernels.load_numba().BLOCK


LAZY = """
import sys
import numpy as np
from weightinit.core.rng import kernels
from weightinit.core.rng.streams import stream_key
from weightinit.core.rng.transforms import Transform, fill_reference
t, key = Transform.normal(0.0, 1.0), stream_key(1, "lazy")
assert "numba" not in sys.modules, "imported with the package"
small = kernels.LAZY_LOAD_ELEMENTS // 4
for i in range(3):
    kernels.fill(t, key, i * small, small, "float32", True)
assert "numba" not in sys.modules, "loaded for less work than it costs"
values, _ = kernels.fill(t, key, 0, small + 1, "float32", True)
assert "numba" in sys.modules, "not loaded once the work paid for it"
assert values.tobytes() == fill_reference(t, key, 0, small + 1, "float32", False)[0].tobytes()
"""

EXPECT = """
import sys
from weightinit.core.rng import kernels
kernels.expect(kernels.LAZY_LOAD_ELEMENTS - 1)
assert "numba" not in sys.modules
kernels.use_numba(False)
kernels.expect(kernels.LAZY_LOAD_ELEMENTS)
assert "numba" not in sys.modules, "loaded although switched off"
kernels.use_numba(True)
kernels.expect(kernels.LAZY_LOAD_ELEMENTS)
assert "numba" in sys.modules
"""


@needs_numba
@pytest.mark.parametrize("code", [LAZY, EXPECT], ids=["after-the-work", "expected-work"])
def test_numba_is_loaded_once_the_work_pays_for_it(code: str, tmp_path: Path) -> None:
    """A fresh process: numba (about a second to import and load) only once the fills
    reach ``LAZY_LOAD_ELEMENTS``, or when that much work is announced."""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr.decode()
