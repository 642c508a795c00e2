"""Activations for signal-propagation diagnostics: the function, its derivative, and
their Gaussian second moments (the mean-field "gains").

For a pre-activation ``z ~ N(0, q)``, the next layer sees ``E[f(z)^2]`` and the gradient
is scaled by ``E[f'(z)^2]``. For the piecewise-linear activations these are exact
multiples of ``q`` (relu: ``q/2`` and ``1/2``). For the others they depend on ``q`` (a
tanh in its linear regime passes the signal whole; a saturated one squashes it, which is
why torch recommends a gain of 5/3 for tanh) and are computed by Gauss-Legendre
quadrature, the mean-field recursion of Poole et al. (2016) and Schoenholz et al. (2017).
``gelu`` is the tanh approximation (within 1e-3 of the erf form); ``softmax`` is an
output activation only (not elementwise): nothing propagates through it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LEAKY_SLOPE = 0.01  # torch's and Keras' default negative slope
_GELU_C = math.sqrt(2.0 / math.pi)
# Gauss-Legendre in z itself, on [-c, c] where the activations bend (c = 20, or 10 std
# when the Gaussian is narrower) and on the two tails out to 10 std. Gauss-Hermite would
# miss tanh's step once the std is large; this resolves both scales. An even node count
# puts no node at 0, so the piecewise-linear activations come out exact by symmetry.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(200)
_FEATURE_SCALE = 20.0

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    """An elementwise activation; ``linear_gain`` is set when ``E[f(z)^2] = gain * E[z^2]``
    and ``E[f'(z)^2] = gain`` for every ``q`` (piecewise-linear and symmetric in this way)."""

    function: Callable[[Array], Array]
    derivative: Callable[[Array], Array]
    linear_gain: float | None = None


def _sigmoid(z: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow for large |z|


def _gelu(z: Array) -> Array:
    return 0.5 * z * (1.0 + np.tanh(_GELU_C * (z + 0.044715 * z**3)))


def _gelu_derivative(z: Array) -> Array:
    inner = _GELU_C * (z + 0.044715 * z**3)
    t = np.tanh(inner)
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * z**2)


def _silu_derivative(z: Array) -> Array:
    s = _sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


_LEAKY_GAIN = (1.0 + LEAKY_SLOPE**2) / 2.0
HIDDEN: dict[str, Activation] = {
    "linear": Activation(lambda z: z, np.ones_like, 1.0),
    "relu": Activation(lambda z: np.maximum(z, 0.0), lambda z: (z > 0.0) * 1.0, 0.5),
    "leaky_relu": Activation(lambda z: np.where(z > 0.0, z, LEAKY_SLOPE * z),
                             lambda z: np.where(z > 0.0, 1.0, LEAKY_SLOPE), _LEAKY_GAIN),
    "tanh": Activation(np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": Activation(_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "gelu": Activation(_gelu, _gelu_derivative),
    "silu": Activation(lambda z: z * _sigmoid(z), _silu_derivative),
}
OUTPUT_ONLY = ("softmax",)
NAMES = (*HIDDEN, *OUTPUT_ONLY)


def _interval(integrand: Callable[[Array], Array], low: float, high: float,
              std: float) -> float:
    half = 0.5 * (high - low)
    z = half * _NODES + 0.5 * (high + low)
    density = np.exp(-0.5 * (z / std) ** 2) / (std * math.sqrt(2.0 * math.pi))
    return float(half * np.dot(_WEIGHTS, integrand(z) * density))


def gaussian_mean(integrand: Callable[[Array], Array], variance: float) -> float:
    """``E[integrand(z)]`` for ``z ~ N(0, variance)`` (the mass beyond 10 std, below
    1e-22, is left out)."""
    if variance <= 0.0:
        return float(integrand(np.zeros(1))[0])
    std = math.sqrt(variance)
    inner = min(10.0 * std, _FEATURE_SCALE)
    total = _interval(integrand, -inner, inner, std)
    if 10.0 * std > inner:
        total += _interval(integrand, -10.0 * std, -inner, std)
        total += _interval(integrand, inner, 10.0 * std, std)
    return total


def forward_second_moment(name: str, variance: float) -> float:
    """``E[f(z)^2]`` for ``z ~ N(0, variance)``: what the next layer receives."""
    activation = HIDDEN[name]
    if activation.linear_gain is not None:
        return activation.linear_gain * variance
    if not math.isfinite(variance):  # the limit: bounded ones saturate, the others overflow
        return {"tanh": 1.0, "sigmoid": 0.5}.get(name, math.inf)
    return gaussian_mean(lambda z: activation.function(z) ** 2, variance)


def backward_gain(name: str, variance: float) -> float:
    """``E[f'(z)^2]`` for ``z ~ N(0, variance)``: how the gradient is scaled going back."""
    activation = HIDDEN[name]
    if activation.linear_gain is not None:
        return activation.linear_gain
    if not math.isfinite(variance):  # the limit: flat tails give 0, gelu/silu 1 half the time
        return {"tanh": 0.0, "sigmoid": 0.0}.get(name, 0.5)
    return gaussian_mean(lambda z: activation.derivative(z) ** 2, variance)
