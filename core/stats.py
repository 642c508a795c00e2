"""Observed statistics of generated values, mergeable across chunks.

Chunks are summarised independently (possibly on different threads) and merged with
Chan et al.'s pairwise update, in float64, so the result does not depend on how a tensor
was cut into chunks beyond float64 rounding of the merge itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Moments:
    """Count, mean, sum of squared deviations (``m2``), min and max of some values."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    @property
    def variance(self) -> float:
        """Population variance (``m2 / count``); NaN for no values."""
        return self.m2 / self.count if self.count else math.nan

    def merge(self, other: Moments) -> Moments:
        """Moments of the union of both value sets (Chan, Golub and LeVeque, 1979)."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / count)
        m2 = self.m2 + other.m2 + delta * delta * (self.count * other.count / count)
        return Moments(
            count, mean, m2, min(self.minimum, other.minimum), max(self.maximum, other.maximum)
        )

    def as_report(self) -> dict[str, float | None]:
        """The observed statistics as they appear in a report (None where undefined)."""
        if self.count == 0:
            return {"mean": None, "variance": None, "min": None, "max": None}
        return {
            "mean": self.mean,
            "variance": self.variance,
            "min": self.minimum,
            "max": self.maximum,
        }


def moments_of(values: np.ndarray) -> Moments:
    """Moments of an array of any float dtype (bfloat16 included), computed in float64."""
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        return Moments()
    as64 = flat.astype(np.float64)
    mean = float(as64.mean())
    centred = as64 - mean
    m2 = float(np.dot(centred, centred))
    return Moments(int(flat.size), mean, m2, float(as64.min()), float(as64.max()))


def constant_moments(value: float, count: int) -> Moments:
    """Moments of ``count`` copies of ``value``, without materialising them."""
    if count == 0:
        return Moments()
    return Moments(count, float(value), 0.0, float(value), float(value))
