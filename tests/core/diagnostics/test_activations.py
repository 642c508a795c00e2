"""Gaussian second moments of activations (the mean-field gains), against quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
from weightinit.core.diagnostics.activations import HIDDEN, backward_gain, forward_second_moment


def reference_mean(function, variance: float) -> float:
    """E[function(z)] for z ~ N(0, variance), by scipy's adaptive quadrature over z, told
    where the activations bend (0, and +-20 or +-10 std)."""
    integrate = pytest.importorskip("scipy.integrate")
    std = math.sqrt(variance)
    bend = min(10 * std, 20.0)

    def integrand(z: float) -> float:
        density = math.exp(-0.5 * (z / std) ** 2) / (std * math.sqrt(2 * math.pi))
        return float(function(np.array([z]))[0]) * density

    value, _ = integrate.quad(integrand, -10 * std, 10 * std, points=sorted({-bend, 0.0, bend}),
                              limit=1000, epsabs=0, epsrel=1e-12)
    return value


@pytest.mark.parametrize("name", sorted(HIDDEN))
@pytest.mark.parametrize("variance", [1e-4, 0.5, 2.0, 30.0, 1e6])
def test_gains_match_adaptive_quadrature(name: str, variance: float) -> None:
    activation = HIDDEN[name]
    forward = reference_mean(lambda z: activation.function(z) ** 2, variance)
    backward = reference_mean(lambda z: activation.derivative(z) ** 2, variance)
    assert forward_second_moment(name, variance) == pytest.approx(forward, rel=1e-8)
    assert backward_gain(name, variance) == pytest.approx(backward, rel=1e-8)


def test_relu_halves_and_tanh_is_linear_only_for_small_signals() -> None:
    assert forward_second_moment("relu", 3.0) == 1.5 and backward_gain("relu", 3.0) == 0.5
    assert forward_second_moment("tanh", 1e-4) == pytest.approx(1e-4, rel=1e-3)
    assert forward_second_moment("tanh", 1.0) < 0.4  # E[tanh(z)^2] = 0.394 for N(0, 1)


def test_infinite_variance_has_the_limits_of_each_activation() -> None:
    assert forward_second_moment("tanh", math.inf) == 1.0
    assert forward_second_moment("relu", math.inf) == math.inf
    assert backward_gain("sigmoid", math.inf) == 0.0
