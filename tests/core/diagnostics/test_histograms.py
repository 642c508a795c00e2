"""Histograms of generated tensors against their initializer's theoretical density."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from weightinit.core import Spec, build_plan
from weightinit.core.diagnostics.histograms import histogram
from weightinit.core.diagnostics.signal import generate_tensors

BINS = 40
# Per chi-square fit; 4 fits below, so a correct generator fails one of them with
# probability below 4e-6 (the seed is fixed: the outcome is too).
CHI2_ALPHA = 1e-6


def generated(init: object, shape: tuple[int, ...] = (300, 400)) -> tuple[np.ndarray, object]:
    spec = Spec.model_validate({"seed": 9, "layers": [
        {"type": "tensor", "name": "w", "shape": list(shape), "init": init}]})
    plan = build_plan(spec)
    return generate_tensors(plan)["w"], plan.outputs[0].plan.init


def chi_square(document: dict) -> tuple[float, int]:
    """Pearson's statistic of observed counts against expected counts, over bins with an
    expected count of at least 5 (the usual validity condition), and its degrees."""
    widths = np.diff(document["edges"])
    expected = np.array(document["expected_density"]) * widths * document["count"]
    observed = np.array(document["counts"])
    keep = expected >= 5
    return float(((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()), int(keep.sum())


@pytest.mark.parametrize("init, kind", [
    ({"name": "uniform", "low": -0.5, "high": 1.5}, "uniform"),
    ({"name": "normal", "mean": 0.25, "std": 2.0}, "normal"),
    ("he_normal", "truncated_normal"),
    ({"name": "truncated_normal", "mean": 0.0, "std": 1.0, "a": -0.5, "b": 3.0},
     "truncated_normal"),
])
def test_observed_histogram_fits_the_theoretical_density(init: object, kind: str) -> None:
    values, resolved = generated(init)
    document = histogram(values, resolved, BINS)
    assert document["distribution"]["kind"] == kind
    widths = np.diff(document["edges"])
    # The expected density is a probability per bin: it sums to one over a bounded range,
    # and for a normal to the mass between the extreme values (the tails beyond the
    # extremes of 120 000 draws hold about 1e-5).
    total = float(np.sum(np.array(document["expected_density"]) * widths))
    if kind == "normal":
        assert 1 - 1e-4 < total < 1
    else:
        assert total == pytest.approx(1.0, abs=1e-9)
    statistic, bins = chi_square(document)
    assert statistic < chi_square_limit(bins)


def chi_square_limit(bins: int) -> float:
    """Pearson's statistic over ``bins`` bins is chi-square with ``bins - 1`` degrees of
    freedom for a correct density; its upper 1 - CHI2_ALPHA quantile is the limit."""
    return float(scipy.stats.chi2.ppf(1.0 - CHI2_ALPHA, bins - 1))


def test_chi_square_detects_a_five_percent_std_error() -> None:
    """Power of the fit above at 120,000 values: a normal 5 % too wide fails it."""
    values, resolved = generated({"name": "normal", "mean": 0.25, "std": 2.0})
    wider = 0.25 + 1.05 * (values - 0.25)
    statistic, bins = chi_square(histogram(wider, resolved, BINS))
    assert statistic > chi_square_limit(bins)


def test_truncated_values_stay_within_the_bounds_of_the_histogram() -> None:
    values, resolved = generated({"name": "truncated_normal", "mean": 0.0, "std": 1.0})
    document = histogram(values, resolved, BINS)
    assert document["edges"][0] == -2.0 and document["edges"][-1] == 2.0
    assert sum(document["counts"]) == values.size


def test_curve_is_the_density_for_drawing() -> None:
    values, resolved = generated({"name": "normal", "mean": 0.0, "std": 1.0})
    curve = histogram(values, resolved, BINS)["curve"]
    peak = max(curve["y"])
    assert peak == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-3)


def test_constant_is_a_spike_with_all_counts_in_one_bin() -> None:
    values, resolved = generated("zeros", (10, 10))
    document = histogram(values, resolved, BINS)
    assert document["distribution"] == {"kind": "constant", "value": 0.0, "approximate": False}
    assert sorted(document["counts"])[-1] == 100 and document["curve"] is None


def test_orthogonal_is_compared_with_an_approximate_normal() -> None:
    values, resolved = generated({"name": "orthogonal", "gain": 1.0}, (64, 64))
    dist = histogram(values, resolved, BINS)["distribution"]
    assert dist["kind"] == "normal" and dist["approximate"]
    assert dist["std"] == pytest.approx(1 / 8)


def test_structured_inits_have_no_density() -> None:
    values, resolved = generated({"name": "eye"}, (8, 8))
    document = histogram(values, resolved, BINS)
    assert document["distribution"]["kind"] == "none"
    assert document["expected_density"] is None and sum(document["counts"]) == 64
