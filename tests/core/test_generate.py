"""A tensor's bytes depend only on (seed, name, initializer, shape, dtype).

Not on the chunk size, the number of threads, the other tensors or their order, nor on
which part of it (``select``, ``shard``) is produced; ``close()`` stops generation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import weightinit.core.generate
from engine_helpers import generate, spec_of, tensor_layer
from hypothesis import given, settings
from hypothesis import strategies as st
from weightinit.core import ChunkStream, build_plan
from weightinit.core.generate import INLINE_MAX_BYTES
from weightinit.core.layers import Override
from weightinit.core.stats import moments_of

# Every kind of sampler: random (uniform/normal/truncated, several dtypes), constant,
# index-based (eye, dirac) and whole-tensor (orthogonal, sparse).
LAYERS = [
    {"type": "linear", "name": "fc1", "in_features": 37, "out_features": 23},
    {"type": "conv2d", "name": "conv", "in_channels": 4, "out_channels": 6, "kernel_size": 3,
     "weight_init": {"name": "kaiming_normal", "nonlinearity": "relu"}, "dtype": "bfloat16"},
    tensor_layer("trunc", [31, 17], {"name": "truncated_normal", "std": 0.5, "a": -0.2,
                                      "b": 0.9}),
    tensor_layer("half", [9, 41], "glorot_normal", dtype="float16"),
    tensor_layer("wide", [5, 7, 11], {"name": "normal", "std": 2.0}, dtype="float64"),
    tensor_layer("eye", [12, 9], "eye"),
    tensor_layer("dirac", [6, 6, 3, 3], {"name": "dirac", "groups": 2}),
    tensor_layer("ortho", [10, 3, 4], {"name": "orthogonal", "gain": 0.5}),
    tensor_layer("sparse", [20, 14], {"name": "sparse", "sparsity": 0.25}),
    tensor_layer("const", [13], {"name": "constant", "value": -1.25}, dtype="bfloat16"),
]


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    """All tensors, generated with the defaults (4 MiB chunks, the shared pool)."""
    return generate(build_plan(spec_of(LAYERS)))


def assert_same_bytes(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for name, values in got.items():
        assert values.dtype == want[name].dtype, name
        assert values.tobytes() == want[name].tobytes(), name


@pytest.mark.parametrize("chunk_bytes", [1, 3, 7, 64, 1000, 4099, 1 << 16])
def test_bytes_do_not_depend_on_chunk_size(reference, chunk_bytes):
    plan = build_plan(spec_of(LAYERS))
    assert_same_bytes(generate(plan, chunk_bytes=chunk_bytes), reference)


@pytest.mark.parametrize("workers", [1, 2])
def test_bytes_do_not_depend_on_thread_count(reference, workers):
    plan = build_plan(spec_of(LAYERS))
    with ThreadPoolExecutor(workers) as executor:
        got = generate(plan, chunk_bytes=256, executor=executor, window=3 * workers)
    assert_same_bytes(got, reference)


def test_bytes_do_not_depend_on_layer_order_or_other_tensors(reference):
    extra = tensor_layer("unrelated", [300], {"name": "normal", "std": 1.0})
    layers = [LAYERS[4], extra, *reversed(LAYERS[5:]), LAYERS[0]]
    got = generate(build_plan(spec_of(layers)))
    assert_same_bytes({k: v for k, v in got.items() if k != "unrelated"}, reference)


def test_bytes_depend_on_seed_name_and_initializer(reference):
    base = tensor_layer("trunc", [31, 17], {"name": "truncated_normal", "std": 0.5, "a": -0.2,
                                            "b": 0.9})
    variants = [
        spec_of([base], seed=1235),
        spec_of([{**base, "name": "trunc2"}]),
        spec_of([{**base, "init": {**base["init"], "b": 0.8}}]),
    ]
    for spec in variants:
        values = next(iter(generate(build_plan(spec)).values()))
        assert values.tobytes() != reference["trunc"].tobytes()


def test_select_bytes_equal_the_full_tensors(reference):
    names = ["ortho", "conv.weight", "half"]
    plan = build_plan(spec_of(LAYERS, select=names))
    assert [output.name for output in plan.outputs] == ["ortho", "conv.weight", "half"]
    assert_same_bytes(generate(plan), reference)


SHARDED = ["fc1.weight", "wide", "ortho", "dirac", "sparse", "eye"]


@pytest.mark.parametrize("dim", [0, 1, -1], ids=["dim0", "dim1", "last"])
def test_shards_are_slices_and_concatenate_to_the_full_tensor(reference, dim):
    layers = [
        {"type": "linear", "name": "fc1", "in_features": 36, "out_features": 24},
        tensor_layer("wide", [6, 12, 6], {"name": "normal", "std": 2.0}, dtype="float64"),
        tensor_layer("ortho", [6, 3, 6], {"name": "orthogonal", "gain": 0.5}),
        tensor_layer("dirac", [6, 6, 3, 6], {"name": "dirac", "groups": 2}),
        tensor_layer("sparse", [18, 6], {"name": "sparse", "sparsity": 0.25}),
        tensor_layer("eye", [12, 6], "eye"),
    ]
    full = generate(build_plan(spec_of(layers, select=SHARDED)))
    world_size = 3
    for name in SHARDED:
        axis = dim % full[name].ndim
        parts = []
        for rank in range(world_size):
            shard = {"dim": axis, "rank": rank, "world_size": world_size}
            plan = build_plan(spec_of(layers, select=[name], shard=shard))
            part = generate(plan, chunk_bytes=40)[name]
            expected = np.split(full[name], world_size, axis=axis)[rank]
            assert part.tobytes() == np.ascontiguousarray(expected).tobytes(), (name, rank)
            parts.append(part)
        assert np.concatenate(parts, axis=axis).tobytes() == full[name].tobytes()


def test_overrides_set_their_range_and_nothing_else(reference):
    plan = build_plan(spec_of(LAYERS, select=["fc1.weight"]))
    output = plan.outputs[0]
    overrides = (Override(5, 40, 0.0), Override(100, 101, 1.0))
    patched = dataclasses.replace(output, plan=dataclasses.replace(output.plan,
                                                                   overrides=overrides))
    plan.outputs[0] = patched
    for chunk_bytes in (4 << 20, 36):
        got = generate(plan, chunk_bytes=chunk_bytes)["fc1.weight"].reshape(-1)
        want = reference["fc1.weight"].reshape(-1).copy()
        want[5:40], want[100] = 0.0, 1.0
        assert got.tobytes() == want.tobytes()


def test_observed_moments_match_the_generated_values(reference):
    plan = build_plan(spec_of(LAYERS))
    merged = {}
    for chunk in ChunkStream(plan, with_stats=True, chunk_bytes=100):
        total = merged.get(chunk.output.name)
        merged[chunk.output.name] = chunk.moments if total is None else total.merge(
            chunk.moments)
    for name, values in reference.items():
        direct = moments_of(values)
        assert merged[name].count == direct.count
        assert merged[name].minimum == direct.minimum and merged[name].maximum == direct.maximum
        assert merged[name].mean == pytest.approx(direct.mean, rel=1e-9, abs=1e-12)
        assert merged[name].variance == pytest.approx(direct.variance, rel=1e-9, abs=1e-15)


def test_async_iteration_gives_the_same_bytes(reference):
    plan = build_plan(spec_of(LAYERS))

    async def collect() -> dict[str, list[np.ndarray]]:
        pieces: dict[str, list[np.ndarray]] = {}
        async for chunk in ChunkStream(plan, chunk_bytes=512):
            pieces.setdefault(chunk.output.name, []).append(chunk.data)
        return pieces

    pieces = asyncio.run(collect())
    for name, values in reference.items():
        assert np.concatenate(pieces[name]).tobytes() == values.tobytes()


def shut_down_pool() -> ThreadPoolExecutor:
    """An executor that refuses every task: a stream that needs a pool fails on it."""
    executor = ThreadPoolExecutor(1)
    executor.shutdown()
    return executor


def test_small_plans_are_generated_on_the_calling_thread(reference):
    """A plan of at most INLINE_MAX_BYTES without whole-tensor initializers skips the pool
    (a shut-down executor would refuse any task): same bytes, iterated both ways."""
    layers = [layer for layer in LAYERS if layer["name"] not in ("ortho", "sparse")]
    plan = build_plan(spec_of(layers))
    assert 0 < plan.total_bytes <= INLINE_MAX_BYTES
    wanted = {name: reference[name] for name in (o.name for o in plan.outputs)}
    assert_same_bytes(generate(plan, chunk_bytes=512, executor=shut_down_pool()), wanted)

    async def collect() -> dict[str, np.ndarray]:
        pieces: dict[str, list[np.ndarray]] = {}
        async for chunk in ChunkStream(plan, chunk_bytes=700, executor=shut_down_pool()):
            pieces.setdefault(chunk.output.name, []).append(chunk.data)
        return {name: np.concatenate(parts) for name, parts in pieces.items()}

    for name, values in asyncio.run(collect()).items():
        assert values.tobytes() == wanted[name].tobytes(), name


@pytest.mark.parametrize("layers", [
    [tensor_layer("ortho", [10, 3, 4], {"name": "orthogonal", "gain": 0.5})],
    [tensor_layer("big", [INLINE_MAX_BYTES // 4 + 1], {"name": "normal", "std": 1.0})],
], ids=["whole-tensor initializer", "over the inline size"])
def test_other_plans_are_generated_on_the_pool(layers):
    stream = ChunkStream(build_plan(spec_of(layers)), executor=shut_down_pool())
    with pytest.raises(RuntimeError, match="shutdown"):
        list(stream)


def test_chunks_arrive_in_file_order_with_first_and_last_flags():
    plan = build_plan(spec_of(LAYERS))
    offsets, flags = [], []
    for chunk in ChunkStream(plan, chunk_bytes=200):
        offsets.append(chunk.output.offset)
        flags.append((chunk.output.name, chunk.first, chunk.last))
    assert offsets == sorted(offsets)
    for output in plan.outputs:
        mine = [(first, last) for name, first, last in flags if name == output.name]
        assert mine[0][0] and mine[-1][1]
        assert sum(first for first, _ in mine) == 1 and sum(last for _, last in mine) == 1


def test_close_stops_generation(monkeypatch):
    """A consumer that goes away after a few chunks leaves at most a window's worth."""
    calls = 0
    lock = threading.Lock()
    real_run_task = weightinit.core.generate.run_task

    def counting_run_task(*args, **kwargs):
        nonlocal calls
        with lock:
            calls += 1
        return real_run_task(*args, **kwargs)

    monkeypatch.setattr(weightinit.core.generate, "run_task", counting_run_task)
    plan = build_plan(spec_of([tensor_layer("big", [1000, 1000], {"name": "normal", "std": 1})]))
    chunk_bytes = 16 << 10
    total = math.ceil(plan.total_bytes / chunk_bytes)  # 245 chunks
    window = 4
    with ThreadPoolExecutor(2) as executor:
        stream = ChunkStream(plan, chunk_bytes=chunk_bytes, executor=executor, window=window)
        for index, _ in enumerate(stream):
            if index == 2:
                break
        stream.close()
        # A closed stream submits nothing more, even if someone iterates it again.
        assert list(stream) == []
    # Shutting the executor down waited for every task that had started: the consumed
    # chunks plus at most the window that was queued ahead.
    assert stream.closed
    assert calls <= 3 + window < total // 10


@st.composite
def sharded_tensors(draw):
    """A small tensor shape, a dim, a world size that divides it, and a chunk size."""
    shape = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    dim = draw(st.integers(0, len(shape) - 1))
    factor = draw(st.integers(1, 3))
    shape[dim] *= factor
    chunk_bytes = draw(st.sampled_from([1, 5, 24, 4096]))
    return shape, dim, factor, chunk_bytes


@settings(max_examples=40, deadline=None)
@given(case=sharded_tensors(), kind=st.sampled_from(["uniform", "orthogonal"]))
def test_any_shard_of_any_shape_is_the_slice(case, kind):
    shape, dim, world_size, chunk_bytes = case
    if kind == "orthogonal" and len(shape) < 2:
        shape = [*shape, 2]
    init = {"name": "uniform", "low": -1, "high": 1} if kind == "uniform" else "orthogonal"
    layers = [tensor_layer("t", shape, init)]
    full = generate(build_plan(spec_of(layers)))["t"]
    for rank in range(world_size):
        shard = {"dim": dim, "rank": rank, "world_size": world_size}
        part = generate(build_plan(spec_of(layers, shard=shard)), chunk_bytes=chunk_bytes)["t"]
        expected = np.split(full, world_size, axis=dim)[rank]
        assert part.tobytes() == np.ascontiguousarray(expected).tobytes()


@pytest.mark.parametrize("init", [{"name": "normal", "std": 3.0}, "he_uniform",
                                  {"name": "truncated_normal", "std": 1e-3, "a": -1e-3,
                                   "b": 2e-3}])
def test_narrow_dtypes_are_the_float32_values_rounded_as_torch_rounds(init):
    """docs/determinism.md section 3: float64 -> float32 (RNE) -> bfloat16/float16 (RNE),
    as ``torch.tensor(x, dtype=float32).to(bfloat16)`` does."""
    import torch

    def values(dtype: str) -> np.ndarray:
        return generate(build_plan(spec_of([tensor_layer("w", [64, 48], init)],
                                           dtype=dtype)))["w"]

    as64, as32 = values("float64"), values("float32")
    assert as32.tobytes() == as64.astype(np.float32).tobytes()
    reference = torch.from_numpy(as32)
    for dtype, torch_dtype in (("bfloat16", torch.bfloat16), ("float16", torch.float16)):
        expected = reference.to(torch_dtype).view(torch.int16).numpy()
        assert values(dtype).view(np.int16).tobytes() == expected.tobytes(), dtype


def test_whole_tensor_samplers_do_not_depend_on_their_draw_block(reference, monkeypatch):
    """Orthogonal and sparse draw their inputs (and sort sparse's columns) in blocks to
    bound memory; the block size must not show in the bytes."""
    import weightinit.core.rng.samplers

    monkeypatch.setattr(weightinit.core.rng.samplers, "_DRAW_BLOCK", 37)
    plan = build_plan(spec_of(LAYERS, select=["ortho", "sparse"]))
    assert_same_bytes(generate(plan), reference)
