"""Per-tensor counter-based random streams (docs/determinism.md, section 1).

Every tensor owns one Philox4x32-10 stream whose key and high counter words come from a
SHA-256 of ``(seed, tensor name, purpose)``. Element ``i`` of the flattened tensor uses the
counter ``(lo32(i // 2), hi32(i // 2), s0, s1)`` and takes output lanes ``(0, 1)`` when
``i`` is even and ``(2, 3)`` when odd, so any element range is produced without producing
anything before it, and a slice of the tensor's words equals the words of that slice.

Philox is implemented here with whole-array numpy ``uint64`` arithmetic: a 32x32-bit
product fits exactly in 64 bits, so ``mulhi``/``mullo`` are a shift and a mask. This is the
reference; ``weightinit.core.rng.kernels`` has a fused numba version tested against it.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MAX_ELEMENTS",
    "PHILOX_M0",
    "PHILOX_M1",
    "PHILOX_ROUNDS",
    "PHILOX_W0",
    "PHILOX_W1",
    "StreamKey",
    "element_words",
    "philox4x32",
    "stream_key",
]

# Salmon et al. (SC'11) / Random123 philox.h constants for Philox4x32.
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9  # golden ratio
PHILOX_W1 = 0xBB67AE85  # sqrt(3) - 1
PHILOX_ROUNDS = 10

MAX_SEED = 2**64 - 1
# Element indices are kept below 2**63 so they fit numba's int64 loop counters; the
# counter words of the doc could address 2**65 elements, no tensor comes close.
MAX_ELEMENTS = 2**63

_DOMAIN = b"weightinit/v1\0"
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


@dataclass(frozen=True)
class StreamKey:
    """Philox key ``(k0, k1)`` and fixed high counter words ``(s0, s1)`` of one stream."""

    k0: int
    k1: int
    s0: int
    s1: int

    def __post_init__(self) -> None:
        for field, value in (("k0", self.k0), ("k1", self.k1), ("s0", self.s0), ("s1", self.s1)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
                raise ValueError(f"StreamKey.{field} must be a uint32 int, got {value!r}")


def stream_key(seed: int, name: str, purpose: str = "values") -> StreamKey:
    """The stream of tensor ``name`` under ``seed`` (``purpose``: ``values`` or ``mask``).

    ``digest = sha256(b"weightinit/v1\\0" + seed as 8 little-endian bytes + utf-8 name
    + b"\\0" + ascii purpose)``; its little-endian uint32 words 0..3 are ``k0, k1, s0, s1``.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**64 - 1], got {seed}")
    if not isinstance(name, str) or not isinstance(purpose, str):
        raise TypeError("name and purpose must be str")
    try:
        purpose_bytes = purpose.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError(f"purpose must be ASCII, got {purpose!r}") from exc
    message = _DOMAIN + seed.to_bytes(8, "little") + name.encode("utf-8") + b"\0" + purpose_bytes
    k0, k1, s0, s1 = struct.unpack("<4I", hashlib.sha256(message).digest()[:16])
    return StreamKey(k0, k1, s0, s1)


def _u64(words: np.ndarray | int) -> np.ndarray:
    """``words`` as a uint64 array, checked to hold uint32 values."""
    arr = np.asarray(words)
    if arr.dtype.kind not in "ui":
        raise TypeError(f"Philox words must be integers, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 0xFFFFFFFF):
        raise ValueError("Philox words must be in [0, 2**32)")
    return arr.astype(np.uint64)


def philox4x32(
    ctr0: np.ndarray | int,
    ctr1: np.ndarray | int,
    ctr2: np.ndarray | int,
    ctr3: np.ndarray | int,
    k0: np.ndarray | int,
    k1: np.ndarray | int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Philox4x32-10 of the (broadcast) counter and key words; four uint32 arrays.

    One round: ``(hi0, lo0) = M0 * x0``, ``(hi1, lo1) = M1 * x2``, then
    ``x = (hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0)``; the key is bumped by the Weyl
    constants between rounds (Random123 ``philox4x32_R``).
    """
    x0, x1, x2, x3, key0, key1 = np.broadcast_arrays(
        *(_u64(v) for v in (ctr0, ctr1, ctr2, ctr3, k0, k1))
    )
    m0, m1 = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1)
    w0, w1 = np.uint64(PHILOX_W0), np.uint64(PHILOX_W1)
    for round_index in range(PHILOX_ROUNDS):
        if round_index:
            key0 = (key0 + w0) & _MASK32
            key1 = (key1 + w1) & _MASK32
        p0 = x0 * m0
        p1 = x2 * m1
        x0, x1, x2, x3 = (
            (p1 >> _SHIFT32) ^ x1 ^ key0,
            p1 & _MASK32,
            (p0 >> _SHIFT32) ^ x3 ^ key1,
            p0 & _MASK32,
        )
    return tuple(v.astype(np.uint32) for v in (x0, x1, x2, x3))  # type: ignore[return-value]


def check_range(start: int, count: int) -> None:
    """Raise unless ``[start, start + count)`` is a valid element range."""
    if not isinstance(start, (int, np.integer)) or not isinstance(count, (int, np.integer)):
        raise TypeError("start and count must be ints")
    if start < 0 or count < 0 or int(start) + int(count) > MAX_ELEMENTS:
        raise ValueError(f"invalid element range: start={start}, count={count}")


def element_words(key: StreamKey, start: int, count: int) -> np.ndarray:
    """The 64-bit words ``w = hi << 32 | lo`` of elements ``start .. start + count - 1``."""
    check_range(start, count)
    start, count = int(start), int(count)
    if count == 0:
        return np.empty(0, dtype=np.uint64)
    first, last = start // 2, (start + count - 1) // 2
    counters = np.arange(first, last + 1, dtype=np.uint64)
    x0, x1, x2, x3 = philox4x32(
        counters & _MASK32, counters >> _SHIFT32, key.s0, key.s1, key.k0, key.k1
    )
    words = np.empty((counters.size, 2), dtype=np.uint64)
    words[:, 0] = (x1.astype(np.uint64) << _SHIFT32) | x0
    words[:, 1] = (x3.astype(np.uint64) << _SHIFT32) | x2
    offset = start - 2 * first
    return words.reshape(-1)[offset : offset + count]
