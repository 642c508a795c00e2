"""The reference transforms: exact operations, dtype rounding and distributional checks.

Statistical checks use n = 200_000 draws from fixed streams (deterministic, so a pass is
a pass forever) and 5-sigma bounds: the sample mean has standard error sqrt(var / n) and
the sample variance sqrt((mu4 - var**2) / n), mu4 being the exact 4th central moment.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
import scipy.stats
import torch
from weightinit.core.rng.portable_math import phi
from weightinit.core.rng.streams import stream_key
from weightinit.core.rng.transforms import (
    UO_MAX,
    Transform,
    fill_reference,
    open_uniform,
    round_to_dtype,
    sample_reference,
)
from weightinit.core.stats import moments_of

N = 200_000
SIGMAS = 5.0
# One-sample KS tests against the exact CDF: 11 of them below at 1e-3 each bound the
# chance that a correct transform fails on an unlucky stream by 1.1 % (Bonferroni); the
# streams are fixed, so a pass is a pass forever. At n = 200,000 the critical distance
# is sqrt(-ln(1e-3 / 2) / (2 n)) = 0.0044: a CDF off by half a percent anywhere fails.
KS_ALPHA = 1e-3


def check_moments(x: np.ndarray, mean: float, var: float, mu4: float) -> None:
    """Sample mean and (population) variance within 5 standard errors of the truth."""
    n = x.size
    assert abs(x.mean() - mean) <= SIGMAS * math.sqrt(var / n)
    assert abs(x.var() - var) <= SIGMAS * math.sqrt((mu4 - var * var) / n)


def draws(transform: Transform, name: str) -> np.ndarray:
    return sample_reference(transform, stream_key(99, name), 0, N)


@pytest.mark.parametrize(("low", "high"), [(-1.0, 1.0), (0.0, 1e-3), (5.0, -5.0), (2.0, 2.0)])
def test_uniform_moments_and_bounds(low: float, high: float) -> None:
    x = draws(Transform.uniform(low, high), f"uniform.{low}.{high}")
    width = high - low
    var = width * width / 12.0
    if width:
        check_moments(x, (low + high) / 2, var, width**4 / 80.0)
        pvalue = scipy.stats.kstest(x, "uniform", args=(min(low, high), abs(width))).pvalue
        assert pvalue > KS_ALPHA
    assert x.min() >= min(low, high) and x.max() <= max(low, high)


@pytest.mark.parametrize(("mean", "std"), [(0.0, 1.0), (0.0, 0.02), (3.0, 0.5)])
def test_normal_moments_and_shape(mean: float, std: float) -> None:
    x = draws(Transform.normal(mean, std), f"normal.{mean}.{std}")
    check_moments(x, mean, std**2, 3.0 * std**4)
    assert scipy.stats.kstest(x, "norm", args=(mean, std)).pvalue > KS_ALPHA
    # The AS241 tail branch (|q| > 0.425, ~15 % of draws): its mass, 5-sigma binomial.
    tail = 2.0 * phi(-2.5)
    frac = np.mean(np.abs(x - mean) > 2.5 * std)
    assert abs(frac - tail) <= SIGMAS * math.sqrt(tail * (1 - tail) / N)


def test_normal_with_zero_std_is_constant() -> None:
    assert np.all(draws(Transform.normal(1.5, 0.0), "const") == 1.5)


def truncated_exact(mean: float, std: float, a: float, b: float) -> tuple[float, float, float]:
    """Closed-form mean and variance of N(mean, std) on [a, b]; mu4 from scipy."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * math.erfc(-z / math.sqrt(2))  # noqa: E731
    mass = cdf(beta) - cdf(alpha)
    d = (pdf(alpha) - pdf(beta)) / mass
    mu = mean + std * d
    var = std * std * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass - d * d)
    dist = scipy.stats.truncnorm(alpha, beta, loc=mean, scale=std)
    # Cross-check of the formula; both lose digits to cancellation on narrow intervals.
    assert math.isclose(float(dist.mean()), mu, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(float(dist.var()), var, rel_tol=1e-6)
    kurt = float(dist.stats(moments="k"))
    return mu, var, (kurt + 3.0) * var * var


@pytest.mark.parametrize(
    ("mean", "std", "a", "b"),
    [(0.0, 0.05, -0.1, 0.1),  # Keras TruncatedNormal: +-2 sigma
     (0.0, 1.0, -1.0, 3.0),   # asymmetric
     (1.0, 2.0, 7.0, 40.0),   # one-sided, deep in the right tail (pa ~ 0.99865)
     (0.0, 1.0, -12.0, -6.0),  # deep left tail (pa ~ 1e-33)
     (0.0, 1.0, -1e-3, 1e-3)],  # nearly uniform
)  # fmt: skip
def test_truncated_normal_moments_and_bounds(mean: float, std: float, a: float, b: float) -> None:
    t = Transform.truncated_normal(mean, std, a, b)
    x = draws(t, f"trunc.{mean}.{std}.{a}.{b}")
    assert x.min() >= a and x.max() <= b
    mu, var, mu4 = truncated_exact(mean, std, a, b)
    check_moments(x, mu, var, mu4)
    alpha, beta = (a - mean) / std, (b - mean) / std
    ks = scipy.stats.kstest(x, "truncnorm", args=(alpha, beta, mean, std))
    assert ks.pvalue > KS_ALPHA


def test_truncated_normal_precomputes_pa_pb() -> None:
    t = Transform.truncated_normal(1.0, 2.0, -3.0, 4.0)
    assert t.pa == phi(-2.0) and t.pb == phi(1.5)
    assert (t.low, t.high) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("build", "error"),
    [(lambda: Transform("laplace"), ValueError),
     (lambda: Transform.uniform(0.0, math.inf), ValueError),
     (lambda: Transform.uniform(-1.7e308, 1.7e308), ValueError),  # high - low overflows
     (lambda: Transform.normal(math.nan, 1.0), ValueError),
     (lambda: Transform.normal(0.0, -1.0), ValueError),
     (lambda: Transform.normal(True, 1.0), TypeError),
     (lambda: Transform.truncated_normal(0.0, 0.0, -1.0, 1.0), ValueError),
     (lambda: Transform.truncated_normal(0.0, 1.0, 1.0, 1.0), ValueError)],
)  # fmt: skip
def test_transform_validation(build: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        build()  # type: ignore[operator]


def test_open_uniform_stays_inside_zero_one() -> None:
    m = np.array([0, 1, 2**52, 2**53 - 2, 2**53 - 1], dtype=np.uint64)
    uo = open_uniform(m << np.uint64(11))
    assert uo[0] == 2.0**-54 and uo[-1] == UO_MAX < 1.0  # (2**53 - 0.5) * 2**-53 rounds to 1
    assert np.all((uo > 0) & (uo < 1))


@pytest.mark.parametrize(("start", "count"), [(0, 0), (1, 1), (3, 4), (17, 1000)])
def test_slices_are_consistent(start: int, count: int) -> None:
    key = stream_key(1, "slice")
    for t in (Transform.uniform(0, 1), Transform.truncated_normal(0, 1, -2, 2)):
        whole = sample_reference(t, key, 0, 1017)
        assert np.array_equal(sample_reference(t, key, start, count), whole[start : start + count])


def torch_round(x64: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """torch.tensor(x, dtype=float32).to(dtype), as raw bits."""
    with np.errstate(over="ignore"):
        t = torch.tensor(x64.astype(np.float32)).to(dtype)
    return t.view(torch.int16).numpy().view(np.uint16)


def test_round_to_dtype_matches_numpy_and_torch() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([
        rng.standard_normal(20_000) * 10.0 ** rng.integers(-40, 39, 20_000),
        (rng.integers(0, 2**15, 5_000) * 2 + 1).astype(np.float32).astype(np.float64) / 2**12,
        [0.0, -0.0, 65504.0, 65520.0, 1e6, -1e-8, 2.0**-25, 2.0**-24, 3.4e38, 1e39],
    ])  # fmt: skip
    with np.errstate(over="ignore"):
        assert np.array_equal(round_to_dtype(x, "float64"), x)
        f32 = round_to_dtype(x, "float32")
        assert f32.dtype == np.float32 and np.array_equal(f32, x.astype(np.float32))
        bf16 = round_to_dtype(x, "bfloat16")
        f16 = round_to_dtype(x, "float16")
    assert bf16.dtype == ml_dtypes.bfloat16 and f16.dtype == np.float16
    assert np.array_equal(bf16.view(np.uint16), torch_round(x, torch.bfloat16))
    assert np.array_equal(f16.view(np.uint16), torch_round(x, torch.float16))


def test_narrow_dtypes_round_via_float32() -> None:
    """float64 -> float32 -> target, each RNE: a value just above a tie can round down."""
    x = np.array([1.0 + 2.0**-8 + 2.0**-30, 1.0 + 2.0**-11 + 2.0**-40])
    assert float(round_to_dtype(x[:1], "bfloat16")[0]) == 1.0  # direct rounding: 1 + 2**-7
    assert float(round_to_dtype(x[1:], "float16")[0]) == 1.0  # direct rounding: 1 + 2**-10
    with pytest.raises(ValueError):
        round_to_dtype(x, "int8")


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
def test_fill_reference(dtype: str) -> None:
    key = stream_key(4, "fill")
    t = Transform.truncated_normal(0.0, 0.02, -0.04, 0.04)
    values, moments = fill_reference(t, key, 5, 3000, dtype, True)
    assert np.array_equal(values, round_to_dtype(sample_reference(t, key, 5, 3000), dtype))
    assert moments == moments_of(values)
    lo, hi = round_to_dtype(np.array([t.a, t.b]), dtype)
    assert values.min() >= lo and values.max() <= hi  # rounding keeps order
    assert fill_reference(t, key, 0, 4, dtype, False)[1] is None
    empty, stats = fill_reference(t, key, 7, 0, dtype, True)
    assert empty.size == 0 and stats is not None and stats.count == 0
