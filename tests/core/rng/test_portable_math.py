"""Accuracy and bit-stability of core.portable_math (docs/determinism.md, section 2).

Tolerances: fdlibm documents < 1 ulp for ``log`` and ``exp``; glibc's are correctly
rounded, so the two differ by at most 1 ulp. fdlibm ``erfc`` and scipy's ``ndtr``/``ndtri``
are few-ulp implementations, hence a few eps relative. ``Phi(z)`` adds the rounding of
``-z/sqrt(2)``, amplified by erfc's condition number (~z**2) in the tails.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import scipy.special as sp
from weightinit.core.rng import kernels, portable_math, samplers, transforms
from weightinit.core.rng.portable_math import (
    SINCOS_MAX_ARG,
    erfc,
    exp,
    log,
    log_array,
    ndtri,
    ndtri_array,
    phi,
    sincos_array,
)

EPS = 2.0**-52
RNG = np.random.default_rng(20240611)


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place (same-sign finite doubles)."""
    ia = np.asarray(a, dtype=np.float64).view(np.int64)
    ib = np.asarray(b, dtype=np.float64).view(np.int64)
    return np.abs(ia - ib)


def test_log_within_one_ulp_of_libm() -> None:
    x = np.concatenate([
        RNG.uniform(0.0, 4.0, 50_000),
        np.exp(RNG.uniform(-744.0, 709.0, 50_000)),
        1.0 + RNG.uniform(-2.0**-19, 2.0**-19, 2_000),  # fdlibm's |f| < 2**-20 branch
        [5e-324, 1e-310, 2.0**-1022, 0.5, 1.0, 2.0, 1.0 + EPS, 1.0 - EPS / 2, 1.7e308],
    ])  # fmt: skip
    x = x[x > 0]
    ref = np.array([math.log(v) for v in x])
    got = log_array(x)
    assert ulps(got[ref != 0], ref[ref != 0]).max() <= 1
    assert got[x == 1.0].tolist() == [0.0]


def test_log_scalar_and_array_agree_bitwise() -> None:
    """Two reductions of the same algorithm (frexp for scalars, bits for arrays)."""
    x = np.concatenate([np.exp(RNG.uniform(-745.0, 709.0, 5_000)), RNG.uniform(0, 1, 5_000)])
    x = np.concatenate([x, [5e-324, 2.0**-1074 * 3, 1.0 + 2.0**-21, 1.0 - 2.0**-22]])
    assert np.array_equal(np.array([log(v) for v in x]), log_array(x))


def test_log_special_values() -> None:
    special = np.array([0.0, -0.0, -1.0, math.inf, -math.inf, math.nan])
    got = log_array(special)
    assert got[:2].tolist() == [-math.inf, -math.inf]
    assert math.isnan(got[2]) and got[3] == math.inf and math.isnan(got[4]) and math.isnan(got[5])
    assert log(0.0) == -math.inf and math.isnan(log(-1.0)) and log(math.inf) == math.inf
    assert log_array(np.ones((2, 3))).shape == (2, 3)


def test_exp_within_one_ulp_of_libm() -> None:
    x = np.concatenate([
        RNG.uniform(-745.0, 709.7, 30_000), RNG.uniform(-1.1, 1.1, 20_000),
        [0.0, 1e-30, -1e-30, 0.34657359, 1.0397, 709.78, -708.4, -745.1],
    ])  # fmt: skip
    got = np.array([exp(v) for v in x])
    ref = np.array([math.exp(v) for v in x])
    normal = ref > 2.0**-1022
    assert ulps(got[normal], ref[normal]).max() <= 1
    assert np.abs(got[~normal] - ref[~normal]).max() <= 5e-324  # subnormal: 1 ulp absolute
    assert exp(math.inf) == math.inf and exp(-math.inf) == 0.0 and math.isnan(exp(math.nan))
    assert exp(710.0) == math.inf and exp(-746.0) == 0.0


def test_erfc_accuracy() -> None:
    x = np.concatenate([RNG.uniform(-6.5, 27.0, 40_000), RNG.uniform(-1.5, 1.5, 20_000)])
    x = np.concatenate([x, [0.0, 0.25, 0.84375, 1.25, 1 / 0.35, 6.0, -6.0, 27.9, 28.0]])
    got = np.array([erfc(v) for v in x])
    ref = np.array([math.erfc(v) for v in x])
    ok = ref > 1e-300
    assert (np.abs(got[ok] - ref[ok]) / ref[ok]).max() <= 4 * EPS
    assert erfc(math.inf) == 0.0 and erfc(-math.inf) == 2.0 and erfc(30.0) == 0.0


def test_phi_accuracy() -> None:
    z = np.concatenate([RNG.uniform(-37.0, 8.2, 20_000), [-37.5, -8.0, 0.0, 1.0, 8.0]])
    got = np.array([phi(v) for v in z])
    ref = sp.ndtr(z)
    assert (np.abs(got - ref) / ref / (1.0 + z * z)).max() <= 4 * EPS
    assert phi(0.0) == 0.5 and phi(math.inf) == 1.0 and phi(-math.inf) == 0.0


def test_ndtri_accuracy() -> None:
    p = np.concatenate([
        RNG.uniform(0.0, 1.0, 100_000), np.exp(RNG.uniform(-708.0, -1.0, 50_000)),
        [2.0**-1022, 2.0**-54, 1.0 - 2.0**-53, 0.075, 0.925, 0.5 + 2.0**-30],
    ])  # fmt: skip
    got, ref = ndtri_array(p), sp.ndtri(p)
    away = np.abs(ref) > 1e-3
    # scipy's ndtri (Cephes) is itself ~6e-16 off; AS241 is ~1e-16 (Wichura).
    assert (np.abs(got[away] - ref[away]) / np.abs(ref[away])).max() <= 8 * EPS
    assert np.abs(got[~away] - ref[~away]).max() <= 1e-18  # near 0.5: absolute
    assert np.all(np.sign(got) == np.sign(p - 0.5))


def test_ndtri_inverts_phi() -> None:
    z = RNG.uniform(-8.0, 8.0, 2_000)
    p = np.array([phi(v) for v in z])
    back = ndtri_array(p)
    # |dz| = |dp| / pdf(z); p carries ~(1 + z^2) eps of relative error in its small tail
    # (see test_phi_accuracy) plus its own rounding, eps * p absolute.
    pdf = np.array([exp(-v * v / 2) for v in z]) / math.sqrt(2 * math.pi)
    dp = EPS * (1.0 + z * z) * np.minimum(p, 1.0 - p) + EPS * p
    assert np.all(np.abs(back - z) <= 8 * dp / pdf)


def test_ndtri_scalar_and_array_agree_and_specials() -> None:
    p = np.concatenate([RNG.uniform(0, 1, 3_000), np.exp(RNG.uniform(-700, -2, 2_000))])
    assert np.array_equal(np.array([ndtri(v) for v in p]), ndtri_array(p))
    edges = np.array([0.0, 1.0, -0.1, 1.1, math.nan])
    got = ndtri_array(edges)
    assert got[0] == -math.inf and got[1] == math.inf and np.all(np.isnan(got[2:]))
    assert ndtri(0.0) == -math.inf and ndtri(1.0) == math.inf and math.isnan(ndtri(2.0))


def test_ndtri_symmetry_where_one_minus_p_is_exact() -> None:
    p = np.arange(1, 2**12) / 2.0**12  # 1 - p is exact on this grid
    assert np.array_equal(ndtri_array(p), -ndtri_array(1.0 - p))


# Pinned results (float.hex): a platform or refactoring difference shows here first.
# exp(1.0) is fdlibm's famous 1-ulp-high value, the same as Java StrictMath.exp(1.0).
PINNED = [
    (log, 10.0, "0x1.26bb1bbb55516p+1"),
    (log, 1e-300, "-0x1.5963447f87fb5p+9"),
    (log, 0.7, "-0x1.6d3c324e13f50p-2"),
    (exp, 1.0, "0x1.5bf0a8b14576ap+1"),
    (exp, -700.5, "0x1.4ff475c68ca02p-1011"),
    (erfc, 0.5, "0x1.eb02147ce245cp-2"),
    (erfc, 3.0, "0x1.729df65034229p-16"),
    (erfc, -1.0, "0x1.d7bb3d3a08446p+0"),
    (phi, -2.0, "0x1.74bcf82c9d863p-6"),
    (phi, 2.0, "0x1.f45a183e9b13dp-1"),
    (ndtri, 0.025, "-0x1.f5c0331eeff83p+0"),
    (ndtri, 1e-10, "-0x1.97203597a2154p+2"),
    (ndtri, 0.3, "-0x1.0c7e39582c5fap-1"),
    (ndtri, 2.0**-1022, "-0x1.2c27b05bf1a0bp+5"),
]


@pytest.mark.parametrize(("func", "x", "expected"), PINNED)
def test_pinned_bits(func: object, x: float, expected: str) -> None:
    assert func(x).hex() == expected  # type: ignore[operator]
    if func is log:
        assert log_array(np.array([x]))[0].hex() == expected
    if func is ndtri:
        assert ndtri_array(np.array([x]))[0].hex() == expected


@pytest.mark.parametrize("module", [portable_math, transforms, kernels, samplers])
def test_no_platform_transcendentals_in_value_path(module: object) -> None:
    source = inspect.getsource(module)  # type: ignore[arg-type]
    for banned in ("np.log(", "np.exp(", "math.log(", "math.exp(", "math.erf", "np.log1p",
                   "np.expm1", "scipy", "fastmath=", "np.sin(", "np.cos(", "math.sin(",
                   "math.cos("):  # fmt: skip
        assert banned not in source, banned


def test_sincos_within_one_ulp_of_the_exact_value() -> None:
    """fdlibm's sin/cos are accurate to < 1 ulp: checked against mpmath at 60 digits, on
    random arguments over the whole supported range and on the angles of a 1500-row
    sinusoidal table, plus the edges of the reduction (multiples of pi/4, 2**19)."""
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(7)
    x = np.concatenate([
        rng.uniform(-SINCOS_MAX_ARG, SINCOS_MAX_ARG, 400), rng.uniform(-4.0, 4.0, 400),
        np.arange(1500.0) * 0.0133352143216332, np.arange(-8, 9) * (math.pi / 4),
        [0.0, -0.0, 1e-300, 2.0**-30, SINCOS_MAX_ARG, -SINCOS_MAX_ARG, 355.0, 103993.0],
    ])
    sin, cos = sincos_array(x)
    with mpmath.workdps(60):
        for value, s, c in zip(x, sin, cos, strict=True):
            exact_sin, exact_cos = mpmath.sin(mpmath.mpf(value)), mpmath.cos(mpmath.mpf(value))
            assert abs(mpmath.mpf(s) - exact_sin) < mpmath.mpf(np.spacing(abs(s))) + 1e-320
            assert abs(mpmath.mpf(c) - exact_cos) < mpmath.mpf(np.spacing(abs(c))) + 1e-320


def test_sincos_refuses_arguments_out_of_range() -> None:
    with pytest.raises(ValueError, match="2"):
        sincos_array(np.array([SINCOS_MAX_ARG * 2]))


def test_sincos_pinned_bits() -> None:
    sin, cos = sincos_array(np.array([1.0, 1000.0, 123456.789]))
    assert [v.hex() for v in sin] + [v.hex() for v in cos] == PINNED_SINCOS


# sin then cos of 1, 1000, 123456.789 (each within 1 ulp of mpmath's, test above).
PINNED_SINCOS = [
    "0x1.aed548f090ceep-1",
    "0x1.a75cc150a206bp-1",
    "-0x1.ff50e60ab53f9p-1",
    "0x1.14a280fb5068cp-1",
    "0x1.1ff026793f1bcp-1",
    "0x1.a74d27c41b22ap-5",
]
