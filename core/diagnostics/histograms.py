"""Histogram of a generated tensor against its initializer's theoretical density.

The theoretical side is exact per bin: the probability mass of the distribution in each
bin divided by its width (``expected_density``), so an observed histogram can be compared
bin by bin, plus a smooth ``curve`` of the density for drawing. Uniform, normal and
truncated normal initializers have a density; constants are a spike (all mass at one
value); orthogonal matrices are compared with the normal of the same variance, which
their entries approach for large sizes (``approximate: true``); eye, dirac and sparse have
no density and get the observed histogram only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from weightinit.core.initializers import ResolvedInit
from weightinit.core.rng.samplers import ConstantSampler, OrthogonalSampler, RandomSampler

CURVE_POINTS = 201
# A value range narrower than this has no drawable density: 1 / width (per bin, too)
# overflows to infinity, which JSON cannot carry. Such a uniform is drawn as a constant.
NARROWEST_RANGE = 1e-300


def _normal_cdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    erf = np.frompyfunc(math.erf, 1, 1)
    return 0.5 * (1.0 + erf((x - mean) / (std * math.sqrt(2.0))).astype(np.float64))


def _normal_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    z = (x - mean) / std
    return np.exp(-0.5 * z * z) / (std * math.sqrt(2.0 * math.pi))


def theoretical(init: ResolvedInit) -> dict[str, Any]:
    """The distribution of an initializer's values: kind and parameters."""
    sampler = init.sampler
    if isinstance(sampler, RandomSampler):
        t = sampler.transform
        params = {
            "uniform": {"low": t.low, "high": t.high},
            "normal": {"mean": t.mean, "std": t.std},
            "truncated_normal": {"mean": t.mean, "std": t.std, "a": t.a, "b": t.b},
        }[t.kind]
        if t.kind == "normal" and t.std == 0.0:
            return {"kind": "constant", "value": t.mean, "approximate": False}
        if t.kind == "uniform" and not t.high - t.low >= NARROWEST_RANGE:
            return {"kind": "constant", "value": t.low, "approximate": False}
        return {"kind": t.kind, **params, "approximate": False}
    if isinstance(sampler, ConstantSampler):
        return {"kind": "constant", "value": sampler.value, "approximate": False}
    if isinstance(sampler, OrthogonalSampler):
        return {"kind": "normal", "mean": 0.0, "std": math.sqrt(init.expected_variance),
                "approximate": True}
    return {"kind": "none", "approximate": False}


def _cdf_at_bounds(dist: dict[str, Any]) -> tuple[float, float]:
    """A truncated normal's untruncated CDF at its bounds ``a`` and ``b``."""
    low, high = _normal_cdf(np.array([dist["a"], dist["b"]]), dist["mean"], dist["std"])
    return low, high


def cdf(dist: dict[str, Any], x: np.ndarray) -> np.ndarray | None:
    """P(X <= x) for the kinds with a density; ``None`` otherwise."""
    kind = dist["kind"]
    if kind == "uniform":
        return np.clip((x - dist["low"]) / (dist["high"] - dist["low"]), 0.0, 1.0)
    if kind == "normal":
        return _normal_cdf(x, dist["mean"], dist["std"])
    if kind == "truncated_normal":
        low, high = _cdf_at_bounds(dist)
        inside = np.clip(x, dist["a"], dist["b"])
        return (_normal_cdf(inside, dist["mean"], dist["std"]) - low) / (high - low)
    return None


def pdf(dist: dict[str, Any], x: np.ndarray) -> np.ndarray | None:
    """The density at ``x`` for the kinds that have one; ``None`` otherwise."""
    kind = dist["kind"]
    if kind == "uniform":
        width = dist["high"] - dist["low"]
        return np.where((x >= dist["low"]) & (x <= dist["high"]), 1.0 / width, 0.0)
    if kind == "normal":
        return _normal_pdf(x, dist["mean"], dist["std"])
    if kind == "truncated_normal":
        low, high = _cdf_at_bounds(dist)
        mass = float(high - low)
        inside = (x >= dist["a"]) & (x <= dist["b"])
        return np.where(inside, _normal_pdf(x, dist["mean"], dist["std"]) / mass, 0.0)
    return None


def _range(values: np.ndarray, dist: dict[str, Any]) -> tuple[float, float]:
    low, high = float(values.min()), float(values.max())
    if dist["kind"] == "uniform":
        low, high = min(low, dist["low"]), max(high, dist["high"])
    elif dist["kind"] == "truncated_normal":
        low, high = min(low, dist["a"]), max(high, dist["b"])
    if not high - low >= NARROWEST_RANGE:  # a constant: one narrow bin around it
        pad = 1e-3 * max(1.0, abs(low))
        low, high = low - pad, high + pad
    return low, high


def histogram(values: np.ndarray, init: ResolvedInit, bins: int = 50) -> dict[str, Any]:
    """Observed density of ``values`` in ``bins`` equal bins and the expected density."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    dist = theoretical(init)
    document: dict[str, Any] = {"distribution": dist, "count": int(flat.size)}
    if flat.size == 0:
        return {**document, "edges": [], "counts": [], "density": [],
                "expected_density": None, "curve": None}
    low, high = _range(flat, dist)
    edges = np.linspace(low, high, bins + 1)
    counts, _ = np.histogram(flat, edges)
    widths = np.diff(edges)
    probabilities = cdf(dist, edges)
    expected = None if probabilities is None else (np.diff(probabilities) / widths).tolist()
    curve = None
    if probabilities is not None:
        x = np.linspace(low, high, CURVE_POINTS)
        curve = {"x": x.tolist(), "y": pdf(dist, x).tolist()}
    return {
        **document,
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "density": (counts / (flat.size * widths)).tolist(),
        "expected_density": expected,
        "curve": curve,
    }
