"""How a resolved initializer turns element indices into values (algorithm v1).

Elementwise samplers (random draws, constants, eye, dirac) produce any element range of a
tensor on its own, so tensors can be cut into chunks, generated in parallel, sharded and
selected without changing a bit. Matrix samplers (orthogonal, sparse) need the whole
tensor and say so with ``whole_tensor = True``; the generator materialises them once.
See ``docs/determinism.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from weightinit.core.fans import Layout
from weightinit.core.regions import run_indices
from weightinit.core.rng.kernels import fill as fill_random
from weightinit.core.rng.kernels import fill_runs as fill_random_runs
from weightinit.core.rng.portable_math import exp, log, sincos_array
from weightinit.core.rng.streams import StreamKey, element_words, stream_key
from weightinit.core.rng.transforms import Transform, round_to_dtype
from weightinit.core.stats import Moments, constant_moments, moments_of


@dataclass(frozen=True)
class TensorIdentity:
    """What a tensor's random stream depends on: the seed, its full name and its shape."""

    seed: int
    name: str
    shape: tuple[int, ...]

    def key(self, purpose: str = "values") -> StreamKey:
        return stream_key(self.seed, self.name, purpose)


# What an elementwise fill returns: the values in the output dtype, and their moments if
# asked (not ``weightinit.core.generate.Chunk``, which is a task's whole output).
Filled = tuple[np.ndarray, Moments | None]

# Whole-tensor samplers draw their inputs in blocks of this many elements, so the random
# core's temporaries stay a few MiB however large the tensor (same bytes as one call).
_DRAW_BLOCK = 1 << 18


def _draws(transform: Transform, key: StreamKey, count: int) -> np.ndarray:
    """Float64 values of elements ``0 .. count - 1`` of a stream, made block by block."""
    out = np.empty(count, dtype=np.float64)
    for start in range(0, count, _DRAW_BLOCK):
        stop = min(count, start + _DRAW_BLOCK)
        fill_random(transform, key, start, stop - start, "float64", False, out=out[start:stop])
    return out


def _words(key: StreamKey, count: int) -> np.ndarray:
    """The 64-bit stream words of elements ``0 .. count - 1``, made block by block."""
    out = np.empty(count, dtype=np.uint64)
    for start in range(0, count, _DRAW_BLOCK):
        stop = min(count, start + _DRAW_BLOCK)
        out[start:stop] = element_words(key, start, stop - start)
    return out


def _finish(values64: np.ndarray, dtype: str, with_stats: bool) -> Filled:
    """Round float64 values to the output dtype and summarise what was written."""
    out = round_to_dtype(values64, dtype)
    return out, (moments_of(out) if with_stats else None)


def _into(out: np.ndarray | None, values: np.ndarray, moments: Moments | None) -> Filled:
    """``values`` copied into a caller's buffer when there is one."""
    if out is None:
        return values, moments
    out.reshape(-1)[...] = values
    return out, moments


@dataclass(frozen=True)
class RandomSampler:
    """Independent draws from a uniform, normal or truncated normal transform."""

    transform: Transform
    whole_tensor = False

    def fill(
        self, tensor: TensorIdentity, start: int, count: int, dtype: str, with_stats: bool,
        out: np.ndarray | None = None,
    ) -> Filled:
        """``out``: a buffer of ``count`` elements of ``dtype`` to fill (reused chunks)."""
        return fill_random(self.transform, tensor.key(), start, count, dtype, with_stats,
                           out=out)

    def fill_runs(
        self, tensor: TensorIdentity, starts: np.ndarray, counts: np.ndarray, dtype: str,
        with_stats: bool, out: np.ndarray | None = None,
    ) -> Filled:
        """The runs ``[starts[r], starts[r] + counts[r])`` one after the other."""
        return fill_random_runs(self.transform, tensor.key(), starts, counts, dtype,
                                with_stats, out=out)


@dataclass(frozen=True)
class ConstantSampler:
    """Every element equal to ``value``."""

    value: float
    whole_tensor = False

    def fill(
        self, tensor: TensorIdentity, start: int, count: int, dtype: str, with_stats: bool
    ) -> Filled:
        if dtype == "int64":  # integer buffers (torch's num_batches_tracked): no rounding
            out = np.full(count, int(self.value), dtype=np.int64)
        else:
            out = round_to_dtype(np.full(count, self.value, dtype=np.float64), dtype)
        if not with_stats:
            return out, None
        return out, constant_moments(float(out[0]) if count else 0.0, count)

    def fill_runs(
        self, tensor: TensorIdentity, starts: np.ndarray, counts: np.ndarray, dtype: str,
        with_stats: bool, out: np.ndarray | None = None,
    ) -> Filled:
        """The same value whatever the runs."""
        return _into(out, *self.fill(tensor, 0, int(np.sum(counts)), dtype, with_stats))


class _ByIndex:
    """A deterministic sampler defined by its value at each flat index (``at``): a span
    and a list of runs are both just indices."""

    def at(self, tensor: TensorIdentity, index: np.ndarray, dtype: str,
           with_stats: bool) -> Filled:
        raise NotImplementedError

    def fill(
        self, tensor: TensorIdentity, start: int, count: int, dtype: str, with_stats: bool
    ) -> Filled:
        return self.at(tensor, np.arange(start, start + count, dtype=np.int64), dtype,
                       with_stats)

    def fill_runs(
        self, tensor: TensorIdentity, starts: np.ndarray, counts: np.ndarray, dtype: str,
        with_stats: bool, out: np.ndarray | None = None,
    ) -> Filled:
        return _into(out, *self.at(tensor, run_indices(starts, counts), dtype, with_stats))


@dataclass(frozen=True)
class EyeSampler(_ByIndex):
    """``gain`` on the main diagonal of a 2-D tensor, zero elsewhere."""

    gain: float
    whole_tensor = False

    def at(self, tensor: TensorIdentity, index: np.ndarray, dtype: str,
           with_stats: bool) -> Filled:
        """The values at flat element indices ``index``."""
        cols = tensor.shape[1]
        values = np.where(index // cols == index % cols, self.gain, 0.0)
        return _finish(values, dtype, with_stats)


@dataclass(frozen=True)
class DiracSampler(_ByIndex):
    """torch ``dirac_``: ones at the kernel centre of ``w[g*opg + d, d]``, d < min(opg, in).

    ``layout`` is where the channel axes sit: torch ``(out, in, *k)`` or keras
    ``(*k, in, out)``; the same kernel is produced in either layout.
    """

    groups: int
    layout: Layout
    whole_tensor = False

    def at(self, tensor: TensorIdentity, flat: np.ndarray, dtype: str,
           with_stats: bool) -> Filled:
        """The values at flat element indices ``flat``."""
        shape = tensor.shape
        out_idx, in_idx, kernel_idx = self.layout.conv_axes(np.unravel_index(flat, shape))
        out_channels, _, kernel = self.layout.conv_axes(shape)
        per_group = out_channels // self.groups
        hit = (out_idx % per_group) == in_idx
        for axis_index, size in zip(kernel_idx, kernel, strict=True):
            hit &= axis_index == size // 2
        return _finish(hit.astype(np.float64), dtype, with_stats)


@dataclass(frozen=True)
class OrthogonalSampler:
    """QR of a Gaussian matrix with sign correction, times ``gain``.

    ``flatten`` is the framework's matrix view of an N-D tensor: torch keeps dim 0 as rows
    and flattens the trailing dims; keras flattens the leading dims and keeps the last.
    """

    gain: float
    flatten: Literal["trailing", "leading"]
    whole_tensor = True

    def matrix_shape(self, shape: tuple[int, ...]) -> tuple[int, int]:
        if self.flatten == "trailing":
            return shape[0], math.prod(shape[1:])
        return math.prod(shape[:-1]), shape[-1]

    def materialize(self, tensor: TensorIdentity) -> np.ndarray:
        rows, cols = self.matrix_shape(tensor.shape)
        big, small = max(rows, cols), min(rows, cols)
        draws = _draws(Transform.normal(0.0, 1.0), tensor.key(), big * small)
        q, r = np.linalg.qr(draws.reshape(big, small))
        del draws
        q *= np.sign(np.diag(r))  # in place: these matrices may be hundreds of MB
        q *= self.gain
        return (q.T if rows < cols else q).reshape(-1)


@dataclass(frozen=True)
class SparseSampler:
    """torch ``sparse_``: N(0, std), then ``ceil(sparsity * rows)`` rows zeroed per column."""

    sparsity: float
    std: float
    whole_tensor = True

    def materialize(self, tensor: TensorIdentity) -> np.ndarray:
        rows, cols = tensor.shape
        values = _draws(Transform.normal(0.0, self.std), tensor.key(), rows * cols)
        values = values.reshape(rows, cols)
        zeros_per_column = math.ceil(self.sparsity * rows)
        if zeros_per_column:
            words = _words(tensor.key("mask"), rows * cols).reshape(rows, cols)
            # Stable sort: equal words keep row order, so ties are broken by row. Columns
            # are independent: sort a block of them at a time to bound the index array.
            step = max(1, _DRAW_BLOCK // rows)
            for first in range(0, cols, step):
                block = slice(first, first + step)
                order = np.argsort(words[:, block], axis=0, kind="stable")[:zeros_per_column]
                np.put_along_axis(values[:, block], order, 0.0, axis=0)
        return values.reshape(-1)


def inverse_timescales(channels: int, max_timescale: float) -> np.ndarray:
    """``exp(-k * ln(max_timescale) / (channels // 2 - 1))`` for ``k < channels // 2``,
    with the portable ``exp``/``log`` (Whisper's ``sinusoids``, in float64)."""
    half = channels // 2
    increment = log(max_timescale) / (half - 1)
    return np.array([exp(-increment * k) for k in range(half)], dtype=np.float64)


def sinusoid_values(rows_of: np.ndarray, cols_of: np.ndarray, inverse: np.ndarray
                    ) -> np.ndarray:
    """Elements ``(t, j)`` of the sinusoidal table: ``sin(t * inv[j])`` in the first
    half of the columns, ``cos(t * inv[j - half])`` in the second (float64)."""
    half = inverse.size
    first = cols_of < half
    angle = rows_of.astype(np.float64) * inverse[np.where(first, cols_of, cols_of - half)]
    sin, cos = sincos_array(angle)
    return np.where(first, sin, cos)


def sinusoid_table(rows: int, cols: int, max_timescale: float) -> np.ndarray:
    """The whole ``rows x cols`` sinusoidal table, float64 (for checks and small tables)."""
    index = np.arange(rows * cols, dtype=np.int64)
    return sinusoid_values(index // cols, index % cols,
                           inverse_timescales(cols, max_timescale)).reshape(rows, cols)


@dataclass(frozen=True)
class SinusoidalSampler(_ByIndex):
    """The fixed sinusoidal position table of a ``(positions, channels)`` tensor, as
    Whisper's encoder sets it: exact (portable ``sin``/``cos``/``exp``), no randomness."""

    max_timescale: float
    whole_tensor = False

    def at(self, tensor: TensorIdentity, index: np.ndarray, dtype: str,
           with_stats: bool) -> Filled:
        """The values at flat element indices ``index``."""
        cols = tensor.shape[1]
        inverse = inverse_timescales(cols, self.max_timescale)
        return _finish(sinusoid_values(index // cols, index % cols, inverse), dtype, with_stats)


Sampler = (
    RandomSampler | ConstantSampler | EyeSampler | DiracSampler | OrthogonalSampler | SparseSampler
    | SinusoidalSampler
)
