"""``fill``: the values of a range (or runs) of a tensor's elements, by the fused numba
kernel (``weightinit.core.rng.fused``) or by the numpy reference
(``weightinit.core.rng.transforms.fill_reference``): the same bytes either way
(tests/core/rng/test_kernels.py), and the same moments (``block_moments`` is the
kernel's summation in numpy), so neither a file nor a report depends on the path.

numba is imported lazily. Importing it and loading its cached kernels costs about what
the reference path spends on ``LAZY_LOAD_ELEMENTS`` elements, so a process loads it once
its fills reach that many (or a caller announces that much work: ``expect``, or asks:
``load_numba``): a small model from the command line never pays for numba, a large one
or a server pays once (benchmarks/cli_start.py).
"""

from __future__ import annotations

import math
import threading
from types import ModuleType
from typing import Any

import numpy as np
from weightinit.core.dtypes import FLOAT_DTYPES
from weightinit.core.rng.streams import MAX_ELEMENTS, StreamKey, check_range
from weightinit.core.rng.transforms import Transform, fill_reference, numpy_dtype
from weightinit.core.stats import Moments

__all__ = ["LAZY_LOAD_ELEMENTS", "block_moments", "expect", "fill", "fill_runs",
           "load_numba", "numba_enabled", "use_numba"]

# Reference-path elements after which loading numba pays for itself (ski rental: the
# reference work done before loading is of the order of the load's own cost, so a
# process spends at most about twice what the better choice in hindsight would).
LAZY_LOAD_ELEMENTS = 1 << 22
BLOCK = 1024  # the fused kernel's moment block (``fused.BLOCK``)

_KIND_CODES = {"uniform": 0, "normal": 1, "truncated_normal": 2}
_DTYPE_CODES = {name: code for code, name in enumerate(FLOAT_DTYPES)}

_lock = threading.Lock()
_use_numba = True
_fused: ModuleType | None = None
_numba_missing = False
_reference_elements = 0


def load_numba() -> ModuleType | None:
    """Import the fused kernels now (numba, its cached kernels); None without numba."""
    global _fused, _numba_missing
    if _fused is not None or _numba_missing:
        return _fused
    with _lock:
        if _fused is None and not _numba_missing:
            try:
                from weightinit.core.rng import fused
            except ImportError:  # numba missing or unusable with this numpy
                _numba_missing = True
            else:
                _fused = fused
    return _fused


def __getattr__(name: str) -> Any:
    if name == "HAVE_NUMBA":  # whether numba imports: known once it was tried
        return load_numba() is not None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def use_numba(enabled: bool) -> None:
    """Allow the numba kernel (when importable) or keep to the numpy reference for
    ``fill``. Both give the same bytes and moments; the entry points set this from their
    settings."""
    global _use_numba
    _use_numba = enabled


def numba_enabled() -> bool:
    """True when ``fill`` runs the numba kernel (numba importable and not switched off);
    asking loads numba."""
    return _use_numba and load_numba() is not None


def expect(elements: int) -> None:
    """A caller is about to fill ``elements`` elements: numba is loaded now if that is
    enough work for it to pay for itself (no reference work spent waiting for it)."""
    if _use_numba and _fused is None and elements >= LAZY_LOAD_ELEMENTS:
        load_numba()


def _kernel_for(count: int) -> ModuleType | None:
    """The fused kernels for a fill of ``count`` elements, or None for the reference."""
    global _reference_elements
    if not _use_numba or _numba_missing:
        return None
    if _fused is not None:
        return _fused
    with _lock:
        rented = _reference_elements + count < LAZY_LOAD_ELEMENTS
        if rented:
            _reference_elements += count
    return None if rented else load_numba()


def _tree_moments(rows: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Mean, m2, min and max of each row's first ``n`` values, as the fused kernel's
    ``_block_moments`` computes them: shifted by the row's first value, padded with it
    to a power of two (at least 16), summed by halving."""
    size = 16
    while size < n:
        size *= 2
    first = rows[:, :1]
    if size > n:
        rows = np.concatenate([rows[:, :n], np.repeat(first, size - n, axis=1)], axis=1)
    half = size // 2
    a, b = rows[:, :half], rows[:, half:size]
    ea, eb = a - first, b - first
    d, d2 = ea + eb, ea * ea + eb * eb
    low, high = np.minimum(a, b), np.maximum(a, b)
    half //= 2
    while half >= 1:
        d = d[:, :half] + d[:, half:2 * half]
        d2 = d2[:, :half] + d2[:, half:2 * half]
        low = np.minimum(low[:, :half], low[:, half:2 * half])
        high = np.maximum(high[:, :half], high[:, half:2 * half])
        half //= 2
    s1 = d[:, 0]
    mean = first[:, 0] + s1 / n
    m2 = np.maximum(d2[:, 0] - s1 * (s1 / n), 0.0)
    return mean, m2, low[:, 0], high[:, 0]


def block_moments(values: np.ndarray, counts: np.ndarray) -> Moments:
    """The moments of ``values`` (runs of ``counts`` elements, one after the other) that
    the fused kernel reports: blocks of ``BLOCK`` from each run's start, each summarised
    by ``_tree_moments``, merged in order with Chan's update written as the kernel writes
    it. Exactly the kernel's floats, so a report does not depend on the path."""
    sv = np.asarray(values).reshape(-1).astype(np.float64)
    n_all, mean, m2, low, high = 0, 0.0, 0.0, math.inf, -math.inf
    pos = 0
    for count in (int(c) for c in counts):
        run = sv[pos:pos + count]
        pos += count
        full = count // BLOCK
        pieces = []
        if full:
            pieces.append((BLOCK, _tree_moments(run[:full * BLOCK].reshape(full, BLOCK),
                                                BLOCK)))
        if count > full * BLOCK:
            rest = count - full * BLOCK
            pieces.append((rest, _tree_moments(run[full * BLOCK:].reshape(1, rest), rest)))
        for n, columns in pieces:
            for b_mean, b_m2, b_low, b_high in zip(*(c.tolist() for c in columns),
                                                   strict=True):
                total = n_all + n
                delta = b_mean - mean
                mean = mean + delta * (float(n) / float(total))
                m2 = m2 + b_m2 + delta * delta * (float(n_all * n) / float(total))
                n_all = total
                low, high = min(low, b_low), max(high, b_high)
    if n_all == 0:
        return Moments()
    return Moments(n_all, mean, m2, low, high)


def _check_out(out: np.ndarray, dtype: str, count: int) -> np.ndarray:
    """The flat, writeable, C-contiguous view of a caller's output buffer."""
    if out.dtype != numpy_dtype(dtype):
        raise ValueError(f"out has dtype {out.dtype}, expected {dtype}")
    if out.size != count:
        raise ValueError(f"out has {out.size} elements, expected {count}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    return out.reshape(-1)


def fill(
    transform: Transform,
    key: StreamKey,
    start: int,
    count: int,
    dtype: str,
    with_stats: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, Moments | None]:
    """Values of elements ``start .. start + count - 1`` in ``dtype`` (+ their moments).

    Bit-identical to ``fill_reference``. Writes into ``out`` (any C-contiguous array of
    ``count`` elements of ``dtype``) when given and returns it; otherwise a new 1-D array.
    """
    check_range(start, count)
    return fill_runs(transform, key, np.array([start], dtype=np.int64),
                     np.array([count], dtype=np.int64), dtype, with_stats, out)


def fill_runs(
    transform: Transform,
    key: StreamKey,
    starts: np.ndarray,
    counts: np.ndarray,
    dtype: str,
    with_stats: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, Moments | None]:
    """The element runs ``[starts[r], starts[r] + counts[r])`` one after the other, in
    ``dtype`` (+ their moments): what ``fill`` gives for each run, concatenated, in one
    call, so a region of many short runs (a column shard) costs per element what a
    contiguous range does.
    """
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    if starts.shape != counts.shape or starts.ndim != 1:
        raise ValueError("starts and counts must be 1-D arrays of the same length")
    if len(starts) and (int(starts.min()) < 0 or int(counts.min()) < 0
                        or int((starts + counts).max()) > MAX_ELEMENTS):
        raise ValueError("invalid element runs")
    count = int(counts.sum())
    fused = _kernel_for(count)
    if fused is None:
        parts = [fill_reference(transform, key, int(s), int(c), dtype, False)[0]
                 for s, c in zip(starts, counts, strict=True)]
        values = (np.concatenate(parts) if parts
                  else np.empty(0, dtype=numpy_dtype(dtype)))
        moments = block_moments(values, counts) if with_stats else None
        if out is None:
            return values, moments
        _check_out(out, dtype, count)[...] = values
        return out, moments
    result = np.empty(count, dtype=numpy_dtype(dtype)) if out is None else out
    flat = _check_out(result, dtype, count)
    t = transform
    params = np.array([t.low, t.high, t.mean, t.std, t.a, t.b, t.pa, t.pb], dtype=np.float64)
    words = np.array([key.k0, key.k1, key.s0, key.s1], dtype=np.uint64)
    stats = np.zeros(4, dtype=np.float64)
    kind, dcode = _KIND_CODES[t.kind], _DTYPE_CODES[dtype]
    fused.fill_kernel(kind, params, words, starts, counts, dcode, flat.view(np.uint8),
                      bool(with_stats), stats)  # fmt: skip
    if not with_stats:
        return result, None
    if count == 0:
        return result, Moments()
    mean, m2, low, high = (float(v) for v in stats)
    return result, Moments(int(count), mean, m2, low, high)
