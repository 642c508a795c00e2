"""The distributions initializers bind to, with their exact mean and variance.

Each returns a ``ResolvedInit``: the sampler that draws it (algorithm v1) and the
expected statistics the plan and the report show.
"""

from __future__ import annotations

import math
from typing import Any

from weightinit.core.initializers.base import ResolvedInit, ResolveError
from weightinit.core.rng.portable_math import exp, phi
from weightinit.core.rng.samplers import ConstantSampler, RandomSampler
from weightinit.core.rng.transforms import P_MAX, P_MIN, Transform

TRUNCATION_CORRECTION = 0.87962566103423978  # std of N(0,1) truncated to [-2, 2]
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def uniform_init(config: dict[str, Any], low: float, high: float, **derived: float) -> ResolvedInit:
    """U[low, high): mean (low+high)/2, variance (high-low)^2/12."""
    return ResolvedInit(
        config,
        RandomSampler(Transform.uniform(low, high)),
        (low + high) / 2.0,
        (high - low) ** 2 / 12.0,
        {"low": low, "high": high, **derived},
    )


def normal_init(config: dict[str, Any], mean: float, std: float, **derived: float) -> ResolvedInit:
    """N(mean, std^2), untruncated."""
    return ResolvedInit(
        config,
        RandomSampler(Transform.normal(mean, std)),
        mean,
        std * std,
        {"std": std, **derived},
    )


def _pdf(z: float) -> float:
    return exp(-0.5 * z * z) / _SQRT_2PI


def truncated_normal_init(
    config: dict[str, Any], mean: float, std: float, a: float, b: float, **derived: float
) -> ResolvedInit:
    """N(mean, std^2) restricted to [a, b]; exact truncated mean and variance."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    # Phi near 1 has lost its low digits: above the mean, use the mirrored lower tail.
    mass = phi(-alpha) - phi(-beta) if alpha > 0.0 else phi(beta) - phi(alpha)
    # The probability interval the v1 transform maps uniforms into (it clamps p).
    drawn_mass = min(phi(beta), P_MAX) - max(phi(alpha), P_MIN)
    if not mass > 0.0 or abs(drawn_mass - mass) > 1e-6 * mass:
        # Far in a tail the probabilities [Phi(a), Phi(b)] hold few doubles (none at all
        # past ~8.3 std above the mean or ~37.5 below): draws would not follow the law.
        raise ResolveError(
            f"[a, b] = [{a}, {b}] lies too far in the tail of N({mean}, {std}^2) for "
            "algorithm v1 to sample it faithfully",
            "b",
        )
    pdf_a = _pdf(alpha) if math.isfinite(alpha) else 0.0
    pdf_b = _pdf(beta) if math.isfinite(beta) else 0.0
    shift = (pdf_a - pdf_b) / mass
    a_term = alpha * pdf_a if math.isfinite(alpha) else 0.0
    b_term = beta * pdf_b if math.isfinite(beta) else 0.0
    variance = std * std * (1.0 + (a_term - b_term) / mass - shift * shift)
    return ResolvedInit(
        config,
        RandomSampler(Transform.truncated_normal(mean, std, a, b)),
        mean + std * shift,
        variance,
        {"std": std, "a": a, "b": b, **derived},
    )


def constant_init(config: dict[str, Any], value: float) -> ResolvedInit:
    """Every element ``value``: mean ``value``, variance 0."""
    return ResolvedInit(config, ConstantSampler(value), value, 0.0)

