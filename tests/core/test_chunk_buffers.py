"""Chunks generated into reused buffers carry exactly the bytes of freshly allocated ones.

``ChunkStream`` fills large random chunks into buffers it hands out again once nothing
references them; these tests check the bytes and moments against ``run_task`` without
buffers (the path the golden vectors pin), and that a chunk, or only a memoryview of it,
kept by the consumer is never overwritten.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from engine_helpers import spec_of, tensor_layer
from weightinit.core import ChunkStream, build_plan
from weightinit.core.generate import POOLED_MIN_BYTES, ChunkBuffers, chunk_tasks, run_task

CHUNK_BYTES = POOLED_MIN_BYTES  # every full chunk of these tensors is pooled

LAYERS = [
    tensor_layer("uniform", [300, 1024], {"name": "uniform", "low": -0.5, "high": 0.5}),
    tensor_layer("normal", [257, 1024], {"name": "normal", "std": 0.02}, dtype="bfloat16"),
    tensor_layer("trunc", [200, 700], {"name": "truncated_normal", "std": 1.0, "a": -1.5,
                                        "b": 2.0}, dtype="float16"),
    tensor_layer("ones", [1024], "ones"),
    tensor_layer("wide", [100, 1000], {"name": "normal", "std": 3.0}, dtype="float64"),
]


def expected_chunks(plan, with_stats: bool) -> list[tuple[bytes, object]]:
    """Every task's bytes and moments, each from a fresh allocation."""
    return [(chunk.buffer.tobytes(), chunk.moments)
            for chunk in (run_task(task, plan.spec.seed, with_stats)
                          for task in chunk_tasks(plan, CHUNK_BYTES))]


@pytest.mark.parametrize("shard", [None, {"dim": 1, "rank": 1, "world_size": 4}])
@pytest.mark.parametrize("with_stats", [False, True])
def test_a_consumer_that_drops_each_chunk_sees_the_fresh_bytes(shard, with_stats):
    """Buffers are reused here (the consumer lets go at once); bytes and moments do not
    change, including multi-piece chunks of a shard (runs of 256 elements)."""
    plan = build_plan(spec_of(LAYERS, shard=shard))
    want = expected_chunks(plan, with_stats)
    with ThreadPoolExecutor(2) as executor:
        stream = ChunkStream(plan, with_stats=with_stats, chunk_bytes=CHUNK_BYTES,
                             executor=executor, window=2)
        got, pooled = [], 0
        for chunk in stream:  # the pool is given back when the stream closes: look before
            got.append((hashlib.sha256(chunk.buffer).digest(), chunk.moments))
            pooled = max(pooled, len(stream._buffers._buffers) if stream._buffers else 0)
    assert pooled  # the pool was used
    assert len(got) == len(want)
    for index, ((digest, moments), (data, want_moments)) in enumerate(
            zip(got, want, strict=True)):
        assert digest == hashlib.sha256(data).digest(), index
        assert moments == want_moments, index


def test_buffers_are_reused_once_released():
    plan = build_plan(spec_of([tensor_layer("big", [4096, 1024], "glorot_uniform")]))
    addresses = set()
    stream = ChunkStream(plan, chunk_bytes=CHUNK_BYTES, window=2)
    chunks = 0
    for chunk in stream:
        addresses.add(chunk.data.__array_interface__["data"][0])
        chunks += 1
    assert chunks == 64
    assert len(addresses) <= 2 + 2  # the window, plus the pool's two spare buffers


def test_chunks_kept_by_the_consumer_are_never_overwritten():
    plan = build_plan(spec_of(LAYERS))
    kept = list(ChunkStream(plan, chunk_bytes=CHUNK_BYTES, window=2))
    assert [c.buffer.tobytes() for c in kept] == [d for d, _ in expected_chunks(plan, False)]


def test_a_memoryview_alone_keeps_its_buffer():
    """What a socket transport keeps while a write is pending: only the memoryview."""
    plan = build_plan(spec_of(LAYERS))
    views = [chunk.buffer for chunk in ChunkStream(plan, chunk_bytes=CHUNK_BYTES, window=2)]
    assert [v.tobytes() for v in views] == [d for d, _ in expected_chunks(plan, False)]


def test_take_gives_a_free_buffer_and_never_one_in_use():
    buffers = ChunkBuffers(1024, limit=2)
    first = buffers.take(1000)
    view = first[:8].view("float32")
    del first
    second = buffers.take(1000)
    assert second.__array_interface__["data"][0] != view.__array_interface__["data"][0]
    address = second.__array_interface__["data"][0]
    del second
    assert buffers.take(512).__array_interface__["data"][0] == address
    assert buffers.take(4096).nbytes == 4096  # bigger than the pool's buffers: fresh
