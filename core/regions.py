"""A region of a tensor (a hyper-rectangle of its full shape) as runs of flat elements.

A region ``(offset, shape)`` of a row-major tensor is a sequence of equally long runs of
consecutive elements of the full tensor: the trailing dims the region covers whole merge
into one run, the dims before them repeat it. ``Runs`` holds that geometry and computes
the runs of any part of the region with whole-array integer arithmetic, so cutting a
narrow region (a column shard: many short runs) into chunks costs per element what
cutting the whole tensor does. Element values do not depend on the region
(``docs/determinism.md``): a region's bytes are those of ``full[offset : offset + shape]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


def row_major_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Elements between neighbours along each dim of a C-ordered tensor."""
    strides = [1] * len(shape)
    for dim in range(len(shape) - 2, -1, -1):
        strides[dim] = strides[dim + 1] * shape[dim + 1]
    return tuple(strides)


@dataclass(frozen=True)
class Runs:
    """The runs of flat elements of the full tensor that make up a region, in order.

    ``count`` runs of ``length`` elements; run ``r`` starts at ``base`` plus, for each
    outer dim ``d``, its index ``r`` unravelled over ``outer_shape`` times
    ``outer_strides[d]``.
    """

    full_shape: tuple[int, ...]
    offset: tuple[int, ...]
    shape: tuple[int, ...]
    length: int
    count: int
    base: int
    outer_shape: tuple[int, ...]
    outer_strides: tuple[int, ...]

    @classmethod
    def of(cls, full_shape: tuple[int, ...], offset: tuple[int, ...] | None = None,
           shape: tuple[int, ...] | None = None) -> Runs:
        """The runs of ``full[offset : offset + shape]`` (the whole tensor by default);
        the region must lie within the tensor (``build_plan`` checks requests)."""
        if offset is None and shape is None:  # the common case, kept cheap for big plans
            full_shape = tuple(full_shape)
            numel = math.prod(full_shape)
            return cls(full_shape, (0,) * len(full_shape), full_shape, numel, 1, 0, (), ())
        offset = tuple(offset) if offset is not None else (0,) * len(full_shape)
        shape = tuple(shape) if shape is not None else tuple(full_shape)
        if not len(offset) == len(shape) == len(full_shape) or any(
            o < 0 or s < 0 or o + s > f for o, s, f in zip(offset, shape, full_shape,
                                                           strict=True)):
            raise ValueError(f"region {offset}+{shape} is not within {full_shape}")
        strides = row_major_strides(full_shape)
        base = sum(o * s for o, s in zip(offset, strides, strict=True))
        if math.prod(shape) == 0:  # an empty tensor: one empty run, so it still has a task
            return cls(tuple(full_shape), offset, shape, 0, 1, base, (), ())
        split = len(full_shape)  # dims [split:] are covered whole: they form one run
        while split and offset[split - 1] == 0 and shape[split - 1] == full_shape[split - 1]:
            split -= 1
        if split == 0:
            length, outer = math.prod(shape), ()
        else:  # the last partly covered dim is part of the run; the dims before repeat it
            length, outer = shape[split - 1] * math.prod(full_shape[split:]), shape[: split - 1]
        count = math.prod(outer)
        return cls(tuple(full_shape), offset, shape, length, count, base, outer,
                   strides[: len(outer)])

    @property
    def numel(self) -> int:
        return self.length * self.count

    @property
    def whole(self) -> bool:
        """True when the region is the entire tensor."""
        return self.shape == self.full_shape

    def starts(self, first: int, number: int) -> np.ndarray:
        """Flat start indices (int64) of runs ``first .. first + number - 1``."""
        index = np.arange(first, first + number, dtype=np.int64)
        starts = np.full(number, self.base, dtype=np.int64)
        for size, stride in zip(reversed(self.outer_shape), reversed(self.outer_strides),
                                strict=True):
            index, position = np.divmod(index, size)
            starts += position * stride
        return starts

    def pieces(self, begin: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """``(starts, counts)`` of the flat runs of the full tensor holding elements
        ``begin .. end - 1`` of the region (row-major within the region)."""
        if end <= begin or self.length == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        first, last = begin // self.length, (end - 1) // self.length
        run_begin = np.arange(first, last + 1, dtype=np.int64) * self.length
        low = np.maximum(run_begin, begin)
        high = np.minimum(run_begin + self.length, end)
        return self.starts(first, last - first + 1) + (low - run_begin), high - low

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """``(start, count)`` of every run: for small regions and tests."""
        starts, counts = self.pieces(0, self.numel)
        yield from zip(starts.tolist(), counts.tolist(), strict=True)

    def take(self, full: np.ndarray) -> np.ndarray:
        """The region of a materialised flat full tensor, as a flat C-ordered copy."""
        index = tuple(slice(o, o + s) for o, s in zip(self.offset, self.shape, strict=True))
        return np.ascontiguousarray(full.reshape(self.full_shape)[index]).reshape(-1)


def run_indices(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The flat element indices of runs, concatenated (for index-based fills)."""
    total = int(counts.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    before = np.cumsum(counts) - counts  # where each run begins in the output
    return np.arange(total, dtype=np.int64) + np.repeat(starts - before, counts)
