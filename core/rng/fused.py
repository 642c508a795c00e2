"""The fused numba kernel: bits -> transform -> output dtype -> moments in one pass.

Imported by ``weightinit.core.rng.kernels`` only when a fill is worth it (numba's import
and the loading of its cached kernels take about a second), never at package import.
``fill_kernel`` gives exactly the bytes of ``weightinit.core.rng.transforms.fill_reference``
(tests/core/rng/test_kernels.py) without materialising a range's words or float64
values: it works on L1-sized blocks, each Philox'd, transformed, rounded, written out and
summarised in turn.

* Same operations as the reference, in the same order, IEEE semantics: no fastmath,
  ``error_model="numpy"``, no FMA (LLVM contracts only under fast-math flags).
* Loops index from 0 over slices (numba's negative-index wraparound otherwise turns
  loads and stores into gathers), so they vectorise. The AS241 central rational runs on
  every element; the ~15 % tail (``|q| > 0.425``) is compacted and patched afterwards.
* bfloat16/float16: round-to-nearest-even on the float32 bits (float64 -> f32 -> target).
* Moments: per block over the rounded values (shifted, pairwise sums), merged with
  Chan's update; ``kernels.block_moments`` is the same computation in numpy, so both
  paths give the same report.
* 512-bit vectors where the CPU has them (``_wide_vectors``, called by each kernel).
* ``nogil=True``: threads may fill disjoint ranges. One signature (output passed as
  bytes), cached on disk (``cache=True``).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
from weightinit.core.rng import portable_math as pm
from weightinit.core.rng.streams import (
    PHILOX_M0,
    PHILOX_M1,
    PHILOX_ROUNDS,
    PHILOX_W0,
    PHILOX_W1,
)
from weightinit.core.rng.transforms import P_MAX, P_MIN, TWO_M53, UO_MAX

Array = np.ndarray


def _choose_cache_dir() -> bool:
    """Whether compiled kernels can be cached on disk; points numba at a writable place.

    numba refuses to decorate a cached function when it finds nowhere to write ("no
    locator available"), e.g. an installed package on a read-only root filesystem. Then
    the cache goes to the temporary directory, or is skipped (compile at first use).
    """
    configured = os.environ.get("NUMBA_CACHE_DIR")
    if configured:
        return os.access(configured, os.W_OK) or not os.path.exists(configured)
    if os.access(os.path.dirname(os.path.abspath(__file__)), os.W_OK):
        return True
    fallback = os.path.join(tempfile.gettempdir(), "weightinit-numba-cache")
    try:
        os.makedirs(fallback, exist_ok=True)
    except OSError:
        return False
    os.environ["NUMBA_CACHE_DIR"] = fallback
    return os.access(fallback, os.W_OK)


_CACHE = _choose_cache_dir()  # before numba reads NUMBA_CACHE_DIR

import numba  # noqa: E402 - after the cache directory is chosen
from llvmlite import ir  # noqa: E402
from numba.cpython.unsafe.numbers import trailing_zeros as _trailing_zeros  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

_jit = numba.njit(nogil=True, cache=_CACHE, error_model="numpy")
_inline = numba.njit(inline="always", error_model="numpy")


def _bitcast(src: str, dst: str, target: ir.Type) -> object:
    """An intrinsic reinterpreting the bits of a ``src`` scalar as ``dst``."""

    @intrinsic
    def cast(typingctx: object, x: object) -> tuple:
        def codegen(ctx: object, builder: ir.IRBuilder, sig: object, args: list) -> object:
            return builder.bitcast(args[0], target)

        return getattr(numba.types, dst)(getattr(numba.types, src)), codegen

    return cast


_f64_bits = _bitcast("float64", "uint64", ir.IntType(64))
_bits_f64 = _bitcast("uint64", "float64", ir.DoubleType())
_f32_bits = _bitcast("float32", "uint32", ir.IntType(32))
_bits_f32 = _bitcast("uint32", "float32", ir.FloatType())


@intrinsic
def _wide_vectors(typingctx: object) -> tuple:
    """Marks the function being compiled to vectorise with 512-bit registers where the
    CPU has them (LLVM otherwise keeps 256 on Intel's AVX-512 cores): the loops here are
    long, uniform float64/integer arithmetic, about a fifth faster so. Same operations
    in the same order, so the same bytes; without AVX-512 the width stays what it is."""

    def codegen(ctx: object, builder: ir.IRBuilder, sig: object, args: list) -> object:
        # llvmlite's attribute set only admits enum attributes: add the string pair raw.
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return ctx.get_dummy_value()  # type: ignore[attr-defined]

    return numba.types.none(), codegen


BLOCK = 1024  # elements per block: the block's scratch stays in L1
_M32 = np.uint64(0xFFFFFFFF)
_SH32, _SH21, _SH11 = np.uint64(32), np.uint64(21), np.uint64(11)
_PM0, _PM1 = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1)


@_inline
def _horner8(c: tuple[float, ...], r: float) -> float:
    """``(((c7*r + c6)*r + c5)...)*r + c0``: PPND16's order, as ``portable_math._horner``."""
    acc = c[7] * r + c[6]
    acc = acc * r + c[5]
    acc = acc * r + c[4]
    acc = acc * r + c[3]
    acc = acc * r + c[2]
    acc = acc * r + c[1]
    return acc * r + c[0]


@_jit
def _philox_block(
    c_first: int, n_ctr: int, keys0: Array, keys1: Array, s0: int, s1: int, mant: Array
) -> None:
    """``mant[e] = w >> 11`` for the two elements of each of ``n_ctr`` counters."""
    _wide_vectors()
    for j in range(n_ctr):
        c = np.uint64(c_first + j)
        # Every word is kept below 2**32 by masking the inputs (keys, key words, products)
        # rather than each xor's result: the compiler then knows the high halves are zero
        # and multiplies with 32x32->64 vector instructions, without the extra masks.
        x0, x1, x2, x3 = c & _M32, c >> _SH32, s0 & _M32, s1 & _M32
        for r in range(PHILOX_ROUNDS):
            p0 = x0 * _PM0
            p1 = x2 * _PM1
            x0 = (p1 >> _SH32) ^ x1 ^ (keys0[r] & _M32)
            x1 = p1 & _M32
            x2 = (p0 >> _SH32) ^ x3 ^ (keys1[r] & _M32)
            x3 = p0 & _M32
        mant[2 * j] = np.int64((x1 << _SH21) | (x0 >> _SH11))
        mant[2 * j + 1] = np.int64((x3 << _SH21) | (x2 >> _SH11))


@_jit
def _log_tail(x: Array, m: int) -> None:
    """fdlibm log in place of ``x[:m]``, all normal and < 0.7 (so ``k != 0``)."""
    _wide_vectors()
    for j in range(m):
        b = _f64_bits(x[j])
        hx = np.int64(b >> _SH32)
        m20 = hx & 0x000FFFFF
        i = (m20 + 0x95F64) & 0x00100000
        dk = np.float64((hx >> 20) - 1023 + (i >> 20))
        hi = np.uint64(m20 | (i ^ 0x3FF00000))
        f = _bits_f64((hi << _SH32) | (b & _M32)) - 1.0
        s = f / (2.0 + f)
        z = s * s
        w = z * z
        t1 = w * (pm.LG2 + w * (pm.LG4 + w * pm.LG6))
        t2 = z * (pm.LG1 + w * (pm.LG3 + w * (pm.LG5 + w * pm.LG7)))
        r = t2 + t1
        hfsq = 0.5 * f * f
        if m20 >= 0x6147A and m20 <= 0x6B851:
            v = dk * pm.LN2_HI - ((hfsq - (s * (hfsq + r) + dk * pm.LN2_LO)) - f)
        else:
            v = dk * pm.LN2_HI - ((s * (f - r) - dk * pm.LN2_LO) - f)
        if ((2 + m20) & 0x000FFFFF) < 3:  # |f| < 2**-20
            rs = f * f * (0.5 - pm.LOG_SMALL_R * f)
            v_small = dk * pm.LN2_HI - ((rs - dk * pm.LN2_LO) - f)
            v = dk * pm.LN2_HI + dk * pm.LN2_LO if f == 0.0 else v_small
        x[j] = v


@_inline
def _tail_indices(p: Array, n: int, idx: Array) -> int:
    """The indices ``t < n`` with ``|p[t] - 0.5| > 0.425`` into ``idx``, ascending; their count.

    Per 64 elements, the comparisons are packed into a bit mask (a loop the compiler
    vectorises) whose set bits are then listed (about 15 % of them): about half the cost
    of comparing and storing element by element. The last partial word goes one by one.
    """
    m = 0
    words = n // 64
    for w in range(words):
        base = w * 64
        bits = np.uint64(0)
        for k in range(64):
            bits |= np.uint64(abs(p[base + k] - 0.5) > pm.SPLIT1) << np.uint64(k)
        while bits:
            idx[m] = base + _trailing_zeros(bits)
            m += 1
            bits &= bits - np.uint64(1)
    for t in range(words * 64, n):  # branch-free
        idx[m] = t
        m += abs(p[t] - 0.5) > pm.SPLIT1
    return m


@_jit
def _ndtri_block(p: Array, z: Array, idx: Array, tr: Array, tv: Array) -> None:
    """``z[:n] = ndtri(p[:n])`` (AS241): central rational for all, then the tails."""
    _wide_vectors()
    n = len(z)
    for t in range(n):
        q = p[t] - 0.5
        r = pm.CONST1 - q * q
        num = _horner8(pm.AS241_A, r)
        den = _horner8(pm.AS241_B, r)
        z[t] = q * num / den
    m = _tail_indices(p, n, idx)
    for j in range(m):
        pt = p[idx[j]]
        tr[j] = pt if pt < 0.5 else 1.0 - pt
    _log_tail(tr, m)
    for j in range(m):
        r = np.sqrt(-tr[j])
        tr[j] = r
        r -= pm.CONST2
        num = _horner8(pm.AS241_C, r)
        den = _horner8(pm.AS241_D, r)
        tv[j] = num / den
    for j in range(m):
        if tr[j] > pm.SPLIT2:  # min(p, 1 - p) < exp(-25): rare
            r = tr[j] - pm.SPLIT2
            num = _horner8(pm.AS241_E, r)
            den = _horner8(pm.AS241_F, r)
            tv[j] = num / den
        t = idx[j]
        z[t] = -tv[j] if p[t] < 0.5 else tv[j]


@_jit
def _bf16(v: float) -> int:
    """bfloat16 bits of float64 ``v``: to float32, then round-to-nearest-even."""
    b = np.int64(_f32_bits(np.float32(v)))
    if (b & 0x7FFFFFFF) > 0x7F800000:
        return np.uint16((b >> 16) | 0x40)
    return np.uint16((b + 0x7FFF + ((b >> 16) & 1)) >> 16)


@_jit
def _f16(v: float) -> int:
    """IEEE half bits of float64 ``v``: to float32, then round-to-nearest-even."""
    b = np.int64(_f32_bits(np.float32(v)))
    sign = (b >> 16) & 0x8000
    a = b & 0x7FFFFFFF
    if a > 0x7F800000:
        h = 0x7E00
    elif a >= 0x477FF000:  # >= 65520 rounds to infinity
        h = 0x7C00
    elif a >= 0x38800000:  # normal half: rebias the exponent, round 13 bits away
        h = (a - 0x38000000 + 0xFFF + ((a >> 13) & 1)) >> 13
    elif a > 0x33000000:  # subnormal half (2**-25 itself is a tie that rounds to 0)
        mant = (a & 0x7FFFFF) | 0x800000
        shift = 126 - (a >> 23)
        h = mant >> shift
        rem = mant - (h << shift)
        half = np.int64(1) << (shift - 1)
        h += (rem > half) | ((rem == half) & ((h & 1) == 1))
    else:
        h = 0
    return np.uint16(sign | h)


@_jit
def _f16_value(h: int) -> float:
    """The float64 value of IEEE half bits ``h`` (exact)."""
    h = np.int64(h)
    e = (h >> 10) & 0x1F
    if e == 0:
        v = np.float64(h & 0x3FF) * 5.9604644775390625e-08  # 2**-24
        return -v if h & 0x8000 else v
    if e == 0x1F:
        bits = ((h & 0x8000) << 16) | 0x7F800000 | ((h & 0x3FF) << 13)
    else:
        bits = ((h & 0x8000) << 16) | ((e + 112) << 23) | ((h & 0x3FF) << 13)
    return np.float64(_bits_f32(np.uint32(bits)))


@_jit
def _emit(x: Array, dcode: int, o64: Array, o32: Array, o16: Array, sv: Array,
          keep: bool) -> None:
    """Round ``x`` to the output dtype into the output slice; with ``keep``, the rounded
    values also to ``sv`` (for the moments)."""
    _wide_vectors()
    if dcode == 0:
        for j in range(len(o64)):
            o64[j] = x[j]
        if keep:
            sv[: len(o64)] = x[: len(o64)]
    elif dcode == 1:
        for j in range(len(o32)):
            o32[j] = np.float32(x[j])
        if keep:
            for j in range(len(o32)):
                sv[j] = o32[j]
    elif dcode == 2:
        for j in range(len(o16)):
            o16[j] = _bf16(x[j])
        if keep:
            for j in range(len(o16)):
                sv[j] = _bits_f32(np.uint32(np.uint32(o16[j]) << np.uint32(16)))
    else:
        for j in range(len(o16)):
            o16[j] = _f16(x[j])
        if keep:
            for j in range(len(o16)):
                sv[j] = _f16_value(o16[j])


@_jit
def _block_moments(sv: Array, n: int, ms: Array) -> tuple[float, float, float, float]:
    """Mean, sum of squared deviations, min and max of ``sv[:n]``.

    Shifted data (``e = v - sv[0]``, no cancellation: ``sv[0]`` is within a few standard
    deviations of the mean), summed pairwise by halving a power-of-two buffer padded with
    ``sv[0]``: every level is a plain elementwise loop, so it vectorises without any
    reassociation. ``sv`` must have room for the padding (``BLOCK`` elements).
    """
    _wide_vectors()
    c = sv[0]
    size = 16
    while size < n:
        size *= 2
    sv[n:size] = c  # padding: zero deviation, neutral for min and max
    h = size // 2
    d, d2, lo, hi = ms[0, :h], ms[1, :h], ms[2, :h], ms[3, :h]
    for j in range(h):  # the first halving level, straight from the values
        a, b = sv[j], sv[j + h]
        ea, eb = a - c, b - c
        d[j] = ea + eb
        d2[j] = ea * ea + eb * eb
        lo[j] = min(a, b)
        hi[j] = max(a, b)
    h //= 2
    while h >= 1:
        for j in range(h):
            d[j] += d[j + h]
            d2[j] += d2[j + h]
            lo[j] = min(lo[j], lo[j + h])
            hi[j] = max(hi[j], hi[j + h])
        h //= 2
    s1 = d[0]
    return c + s1 / n, max(d2[0] - s1 * (s1 / n), 0.0), lo[0], hi[0]


@_jit
def _transform_block(
    kind: int, params: Array, mant: Array, x: Array, pv: Array, idx: Array, tr: Array, tv: Array
) -> None:
    """``x[:n]`` = the transform of the words' mantissas ``mant[:n]`` (``w >> 11``)."""
    _wide_vectors()
    n = len(x)
    if kind == 0:
        low, span = params[0], params[1] - params[0]
        for t in range(n):
            x[t] = low + span * (np.float64(mant[t]) * TWO_M53)
        return
    if kind == 1:
        for t in range(n):
            pv[t] = min((np.float64(mant[t]) + 0.5) * TWO_M53, UO_MAX)
    else:
        pa, dp = params[6], params[7] - params[6]
        for t in range(n):
            uo = min((np.float64(mant[t]) + 0.5) * TWO_M53, UO_MAX)
            pv[t] = min(max(pa + dp * uo, P_MIN), P_MAX)
    _ndtri_block(pv, x, idx, tr, tv)
    mean, std = params[2], params[3]
    if kind == 1:
        for t in range(n):
            x[t] = mean + std * x[t]
    else:
        a, b = params[4], params[5]
        for t in range(n):
            x[t] = min(max(mean + std * x[t], a), b)


@_jit
def fill_kernel(
    kind: int,
    params: Array,
    keyw: Array,
    starts: Array,
    counts: Array,
    dcode: int,
    out: Array,
    with_stats: bool,
    stats: Array,
) -> None:
    """Fill ``out`` (the output's raw bytes) with the runs of elements
    ``starts[r] .. starts[r] + counts[r] - 1``, one after the other.

    Block loop within each run: Philox -> transform -> rounding into the output -> block
    moments, merged. A block never spans two runs, so a run's values are those of the
    same elements generated on their own.
    """
    _wide_vectors()
    o64 = out.view(np.float64) if dcode == 0 else np.empty(0, dtype=np.float64)
    o32 = out.view(np.float32) if dcode == 1 else np.empty(0, dtype=np.float32)
    o16 = out.view(np.uint16) if dcode >= 2 else np.empty(0, dtype=np.uint16)
    keys0 = np.empty(PHILOX_ROUNDS, dtype=np.uint64)
    keys1 = np.empty(PHILOX_ROUNDS, dtype=np.uint64)
    k0, k1 = keyw[0], keyw[1]
    for r in range(PHILOX_ROUNDS):
        keys0[r] = k0
        keys1[r] = k1
        k0 = (k0 + np.uint64(PHILOX_W0)) & _M32
        k1 = (k1 + np.uint64(PHILOX_W1)) & _M32
    mant = np.empty(BLOCK + 2, dtype=np.int64)
    x = np.empty(BLOCK)
    pv = np.empty(BLOCK)
    idx = np.empty(BLOCK, dtype=np.uint64)
    tr = np.empty(BLOCK)
    tv = np.empty(BLOCK)
    sv = np.empty(BLOCK)
    ms = np.empty((4, BLOCK // 2))
    n_all, mean, m2, lo_all, hi_all = 0, 0.0, 0.0, np.inf, -np.inf
    pos = 0
    for run in range(len(starts)):
        start, end = starts[run], pos + counts[run]
        start -= pos  # element index = start + pos while pos < end
        while pos < end:
            c_first = (start + pos) // 2
            off = start + pos - 2 * c_first
            n = min(BLOCK, end - pos)
            _philox_block(c_first, (off + n + 1) // 2, keys0, keys1, keyw[2], keyw[3], mant)
            _transform_block(kind, params, mant[off : off + n], x[:n], pv, idx, tr, tv)
            _emit(x, dcode, o64[pos : pos + n], o32[pos : pos + n], o16[pos : pos + n], sv,
                  with_stats)
            if with_stats:
                b_mean, b_m2, b_lo, b_hi = _block_moments(sv, n, ms)
                total = n_all + n
                delta = b_mean - mean
                mean = mean + delta * (n / total)
                m2 = m2 + b_m2 + delta * delta * (n_all * n / total)
                n_all = total
                lo_all, hi_all = min(lo_all, b_lo), max(hi_all, b_hi)
            pos += n
    stats[0], stats[1], stats[2], stats[3] = mean, m2, lo_all, hi_all
