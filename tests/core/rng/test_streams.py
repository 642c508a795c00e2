"""Philox4x32-10 and the per-tensor stream layout (docs/determinism.md, section 1)."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from weightinit.core.rng.streams import (
    MAX_ELEMENTS,
    StreamKey,
    element_words,
    philox4x32,
    stream_key,
)

# Random123 tests/kat_vectors, rows "philox4x32 10": counter[4] key[2] -> expected[4].
KAT_PHILOX4X32_10 = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]  # fmt: skip


@pytest.mark.parametrize(("counter", "key", "expected"), KAT_PHILOX4X32_10)
def test_philox_known_answers(counter: tuple, key: tuple, expected: tuple) -> None:
    out = philox4x32(*counter, *key)
    assert [int(v) for v in out] == list(expected)
    assert all(v.dtype == np.uint32 for v in out)


def test_philox_is_elementwise_over_arrays() -> None:
    counters = np.array([c for c, _, _ in KAT_PHILOX4X32_10], dtype=np.uint32).T
    keys = np.array([k for _, k, _ in KAT_PHILOX4X32_10], dtype=np.uint32).T
    out = np.stack(philox4x32(*counters, *keys))
    assert out.T.tolist() == [list(e) for _, _, e in KAT_PHILOX4X32_10]


def test_philox_rejects_words_out_of_range() -> None:
    with pytest.raises(ValueError):
        philox4x32(2**32, 0, 0, 0, 0, 0)
    with pytest.raises(TypeError):
        philox4x32(0.5, 0, 0, 0, 0, 0)


def test_philox_matches_randomgen() -> None:
    """An independent implementation (randomgen's Philox4x32), where installed."""
    randomgen = pytest.importorskip("randomgen")
    key = stream_key(7, "independent.check")
    first = 2**32 - 3  # the counter's low word wraps inside the range
    start_counter = first | key.s0 << 64 | key.s1 << 96
    gen = randomgen.Philox(counter=start_counter - 1, key=key.k0 | key.k1 << 32, number=4, width=32)
    raw = gen.random_raw(4 * 8).reshape(-1, 4).astype(np.uint64)  # counter incremented first
    words = np.stack([raw[:, 1] << 32 | raw[:, 0], raw[:, 3] << 32 | raw[:, 2]], axis=1)
    assert np.array_equal(words.reshape(-1), element_words(key, 2 * first, 16))


def test_stream_key_is_the_documented_digest() -> None:
    seed, name, purpose = 2**64 - 1, "model.layers.0.attn.q_proj.weight", "values"
    digest = hashlib.sha256(
        b"weightinit/v1\0" + seed.to_bytes(8, "little") + name.encode() + b"\0" + b"values"
    ).digest()
    assert stream_key(seed, name, purpose) == StreamKey(*struct.unpack("<4I", digest[:16]))
    assert stream_key(seed, name) == stream_key(seed, name, "values")


def test_stream_key_pinned() -> None:
    """A golden key: changing the derivation is a new algorithm version."""
    assert stream_key(0, "w") == StreamKey(2599149943, 3933385507, 2577936779, 2272676092)


@pytest.mark.parametrize(
    "other",
    [(1, "embed.weight", "values"), (0, "embed.bias", "values"), (0, "embed.weight", "mask"),
     (2**32, "embed.weight", "values"), (0, "embed.weight\0", "values")],
)  # fmt: skip
def test_streams_differ(other: tuple[int, str, str]) -> None:
    base = stream_key(0, "embed.weight", "values")
    key = stream_key(*other)
    assert key != base
    assert not np.array_equal(element_words(key, 0, 64), element_words(base, 0, 64))


def test_unicode_names_are_utf8() -> None:
    assert stream_key(3, "poids.é") != stream_key(3, "poids.e")


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_seed_range(seed: int) -> None:
    with pytest.raises(ValueError):
        stream_key(seed, "w")


@pytest.mark.parametrize("seed", [1.0, True, "1", None])
def test_seed_type(seed: object) -> None:
    with pytest.raises(TypeError):
        stream_key(seed, "w")  # type: ignore[arg-type]


def test_seed_extremes_accepted_and_purpose_ascii() -> None:
    assert stream_key(0, "w") != stream_key(2**64 - 1, "w")
    with pytest.raises(ValueError):
        stream_key(0, "w", "masqué")


def test_stream_key_fields_are_uint32() -> None:
    with pytest.raises(ValueError):
        StreamKey(2**32, 0, 0, 0)
    with pytest.raises(ValueError):
        StreamKey(-1, 0, 0, 0)


def test_element_counter_and_lanes() -> None:
    """Element i: counter (lo32(i//2), hi32(i//2), s0, s1); lanes (0,1) even, (2,3) odd."""
    key = stream_key(11, "layout")
    for i in (0, 1, 2, 7, 2**33 + 4, 2**33 + 5, 2**40 - 1):
        c = i // 2
        x = [int(v) for v in philox4x32(c & 0xFFFFFFFF, c >> 32, key.s0, key.s1, key.k0, key.k1)]
        lo, hi = (x[0], x[1]) if i % 2 == 0 else (x[2], x[3])
        assert int(element_words(key, i, 1)[0]) == hi << 32 | lo


@pytest.mark.parametrize(
    ("start", "count"), [(0, 0), (0, 1), (1, 1), (3, 7), (998, 2), (999, 1), (500, 500), (1, 998)]
)
def test_slice_of_words_is_words_of_slice(start: int, count: int) -> None:
    key = stream_key(5, "slices")
    whole = element_words(key, 0, 1000)
    part = element_words(key, start, count)
    assert part.dtype == np.uint64
    assert np.array_equal(part, whole[start : start + count])


def test_element_range_validation() -> None:
    key = stream_key(0, "w")
    for start, count in ((-1, 1), (0, -1), (MAX_ELEMENTS, 1)):
        with pytest.raises(ValueError):
            element_words(key, start, count)
    assert element_words(key, MAX_ELEMENTS - 3, 3).size == 3
