"""``weightinit.core.stats``: moments of a tensor do not depend on how it was cut into chunks.

Merged moments are compared with the moments of the whole within float64 rounding. Both
sides subtract a mean known to a few eps times ``scale = |mean| + std``, so each of the
n deviations carries that absolute error: the mean may differ by ~eps * scale and m2 by
~n * eps * scale^2 (more than eps * m2 when the values sit far from zero, close
together). The bounds below are 1e-12 of those, about 4,500 eps.
"""

from __future__ import annotations

import itertools
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from weightinit.core.stats import Moments, constant_moments, moments_of


def assert_close(got: Moments, want: Moments) -> None:
    assert got.count == want.count
    assert (got.minimum, got.maximum) == (want.minimum, want.maximum)
    scale = abs(want.mean) + math.sqrt(want.variance)
    assert abs(got.mean - want.mean) <= 1e-12 * scale
    assert abs(got.m2 - want.m2) <= 1e-12 * want.count * scale**2


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=2000),
    cuts=st.lists(st.integers(0, 2000), max_size=6),
)
def test_merged_chunks_equal_the_whole(values: list[float], cuts: list[int]) -> None:
    array = np.array(values)
    bounds = sorted({0, len(values), *(c for c in cuts if c <= len(values))})
    merged = Moments()
    for lo, hi in itertools.pairwise(bounds):
        merged = merged.merge(moments_of(array[lo:hi]))
    assert_close(merged, moments_of(array))


def test_merge_with_empty_is_identity_both_ways() -> None:
    some = moments_of(np.array([1.0, 2.0, 4.0]))
    assert some.merge(Moments()) == some
    assert Moments().merge(some) == some


def test_moments_of_known_values() -> None:
    moments = moments_of(np.array([1.0, 2.0, 4.0, 5.0]))
    assert (moments.count, moments.mean, moments.m2) == (4, 3.0, 10.0)
    assert moments.variance == 2.5  # population variance, as torch.var(unbiased=False)
    assert (moments.minimum, moments.maximum) == (1.0, 5.0)


def test_narrow_dtypes_are_summarised_in_float64() -> None:
    values = np.array([0.1, 0.2, 0.3], dtype=ml_dtypes.bfloat16)
    assert moments_of(values) == moments_of(values.astype(np.float64))


def test_empty_has_undefined_report() -> None:
    empty = moments_of(np.empty(0))
    assert empty == Moments() and math.isnan(empty.variance)
    assert empty.as_report() == {"mean": None, "variance": None, "min": None, "max": None}


@pytest.mark.parametrize("count", [0, 1, 7])
def test_constant_moments_equal_the_materialised_values(count: int) -> None:
    assert constant_moments(-1.25, count) == moments_of(np.full(count, -1.25))
