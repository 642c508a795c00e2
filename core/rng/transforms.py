"""Reference path from stream words to output values (docs/determinism.md, sections 2-3).

``sample_reference`` turns the 64-bit words of an element range into float64 values of a
``Transform`` with whole-array numpy passes, in exactly the operations of algorithm v1;
``round_to_dtype`` rounds them to the output dtype (float64 -> float32 -> bfloat16/float16,
each step round-to-nearest-even). This module is the definition in code: it favours
readability over speed. ``weightinit.core.rng.kernels`` fuses the same steps into one
numba pass and is tested to give the same bytes.

One guard the doc's formula needs is added here (and in the kernels):
``uo = ((w >> 11) + 0.5) * 2**-53`` rounds to exactly 1.0 for ``w >> 11 == 2**53 - 1``
(``2**53 - 0.5`` is a tie that rounds to even), so ``uo`` is clamped to ``1 - 2**-53`` to
keep it in ``(0, 1)`` as the doc intends. Only that one word in 2**53 is affected.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
from weightinit.core.dtypes import FLOAT_DTYPES, numpy_dtype
from weightinit.core.rng.portable_math import ndtri_array, phi
from weightinit.core.rng.streams import StreamKey, check_range, element_words
from weightinit.core.stats import Moments, moments_of

__all__ = [
    "DTYPES",
    "KINDS",
    "P_MAX",
    "P_MIN",
    "UO_MAX",
    "Transform",
    "fill_reference",
    "numpy_dtype",
    "open_uniform",
    "round_to_dtype",
    "sample_reference",
]

KINDS = ("uniform", "normal", "truncated_normal")
DTYPES = FLOAT_DTYPES

TWO_M53 = 2.0**-53
UO_MAX = 1.0 - 2.0**-53  # largest double below 1
P_MIN = 2.0**-1022  # truncated-normal probability clamp (smallest normal double)
P_MAX = 1.0 - 2.0**-53

def _finite(**params: float) -> None:
    for name, value in params.items():
        # float and int first: the ABC check costs a quarter of planning a large model
        if type(value) is not float and type(value) is not int and (
            not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_))
        ):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")


@dataclass(frozen=True)
class Transform:
    """An elementwise distribution of algorithm v1 and its float parameters.

    Build it with ``Transform.uniform``, ``Transform.normal`` or
    ``Transform.truncated_normal``; parameters a kind does not use stay 0. For the
    truncated normal, ``pa = Phi((a - mean) / std)`` and ``pb = Phi((b - mean) / std)`` are
    derived once here with the portable ``phi`` (they are not constructor arguments).
    """

    kind: str
    low: float = 0.0
    high: float = 0.0
    mean: float = 0.0
    std: float = 0.0
    a: float = 0.0
    b: float = 0.0
    pa: float = field(default=0.0, init=False)
    pb: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown transform kind {self.kind!r}; expected one of {KINDS}")
        params = {k: getattr(self, k) for k in ("low", "high", "mean", "std", "a", "b")}
        _finite(**params)
        for k, v in params.items():
            object.__setattr__(self, k, float(v))
        if self.kind == "uniform" and not math.isfinite(self.high - self.low):
            raise ValueError("high - low overflows")
        if self.kind == "normal" and not self.std >= 0.0:
            raise ValueError(f"std must be >= 0, got {self.std}")
        if self.kind == "truncated_normal":
            if not self.std > 0.0:
                raise ValueError(f"std must be > 0, got {self.std}")
            if not self.a < self.b:
                raise ValueError(f"need a < b, got a={self.a}, b={self.b}")
            object.__setattr__(self, "pa", phi((self.a - self.mean) / self.std))
            object.__setattr__(self, "pb", phi((self.b - self.mean) / self.std))

    @classmethod
    def uniform(cls, low: float, high: float) -> Transform:
        """``low + (high - low) * u``, ``u`` in ``[0, 1)``; ``high - low`` must be finite."""
        return cls("uniform", low=low, high=high)

    @classmethod
    def normal(cls, mean: float, std: float) -> Transform:
        """``mean + std * ndtri(uo)``."""
        return cls("normal", mean=mean, std=std)

    @classmethod
    def truncated_normal(cls, mean: float, std: float, a: float, b: float) -> Transform:
        """Normal(mean, std) restricted to the absolute bounds ``[a, b]`` by inversion."""
        return cls("truncated_normal", mean=mean, std=std, a=a, b=b)


def open_uniform(words: np.ndarray) -> np.ndarray:
    """``uo = ((w >> 11) + 0.5) * 2**-53``, clamped to ``1 - 2**-53``: in ``(0, 1)``."""
    uo = ((words >> np.uint64(11)).astype(np.float64) + 0.5) * TWO_M53
    return np.minimum(uo, UO_MAX)


def sample_reference(transform: Transform, key: StreamKey, start: int, count: int) -> np.ndarray:
    """Float64 values of elements ``start .. start + count - 1`` of the stream ``key``."""
    words = element_words(key, start, count)
    t = transform
    if t.kind == "uniform":
        u = (words >> np.uint64(11)).astype(np.float64) * TWO_M53
        return t.low + (t.high - t.low) * u
    uo = open_uniform(words)
    if t.kind == "normal":
        return t.mean + t.std * ndtri_array(uo)
    p = np.clip(t.pa + (t.pb - t.pa) * uo, P_MIN, P_MAX)
    x = t.mean + t.std * ndtri_array(p)
    return np.minimum(np.maximum(x, t.a), t.b)


def round_to_dtype(values64: np.ndarray, dtype: str) -> np.ndarray:
    """Round float64 values to ``dtype``: to float32 (RNE), then to bf16/f16 (RNE)."""
    target = numpy_dtype(dtype)
    values64 = np.asarray(values64, dtype=np.float64)
    if dtype == "float64":
        return values64.copy()
    as32 = values64.astype(np.float32)
    if dtype == "float32":
        return as32
    return as32.astype(target)


def fill_reference(
    transform: Transform, key: StreamKey, start: int, count: int, dtype: str, with_stats: bool
) -> tuple[np.ndarray, Moments | None]:
    """Values of an element range in ``dtype`` and, if asked, their observed moments."""
    check_range(start, count)
    numpy_dtype(dtype)
    values = round_to_dtype(sample_reference(transform, key, start, count), dtype)
    return values, (moments_of(values) if with_stats else None)
