
"""Regions: ``select`` items ``{name, offset, shape}`` give exactly ``full[offset:offset+shape]``.

For every initializer and layer type (the golden specs and the layer-type specs), random
regions generated on their own, cut into random chunk sizes on 1 or 3 threads, equal the
same slice of the whole tensor generated in one piece. The run geometry is checked
against numpy's own slicing, the multi-run kernel against one call per run, and a few
regions are pinned as golden digests.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from engine_helpers import generate, spec_of, tensor_layer
from golden_specs import GOLDEN_SPECS, ORTHOGONAL_SPECS, digests, plan_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_strategies import KERAS_LAYERS, LAYER_TYPES
from weightinit.core import SpecError, build_plan
from weightinit.core.regions import Runs, run_indices
from weightinit.core.rng.kernels import fill, fill_runs
from weightinit.core.rng.streams import stream_key
from weightinit.core.rng.transforms import Transform
from weightinit.core.safetensors_io.writer import file_metadata
from weightinit.core.spec import Spec

SPECS: dict[str, dict[str, Any]] = {
    **GOLDEN_SPECS,
    **{f"orthogonal_{name}": body for name, body in ORTHOGONAL_SPECS.items()},
    "layer_types": {**LAYER_TYPES, "select": None, "shard": None},
    "keras_layer_types": KERAS_LAYERS,
}
POOLS = {threads: ThreadPoolExecutor(threads, thread_name_prefix=f"regions-{threads}")
         for threads in (1, 3)}


@functools.cache
def full_tensors(key: str) -> dict[str, np.ndarray]:
    """Every tensor of a spec, generated whole in one stream (default chunks)."""
    return generate(plan_of(SPECS[key]))


def region_slice(offset: list[int], shape: list[int]) -> tuple[slice, ...]:
    return tuple(slice(o, o + s) for o, s in zip(offset, shape, strict=True))


@st.composite
def regions(draw: st.DrawFn, full: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """A non-empty region of a tensor of shape ``full`` (which must have no zero dim),
    biased towards the edges, whole dims and single rows that real shards are."""
    offset, shape = [], []
    for size in full:
        kind = draw(st.sampled_from(["any", "whole", "one", "tail"]))
        if kind == "whole":
            start, length = 0, size
        elif kind == "one":
            start, length = draw(st.integers(0, size - 1)), 1
        elif kind == "tail":
            length = draw(st.integers(1, size))
            start = size - length
        else:
            start = draw(st.integers(0, size - 1))
            length = draw(st.integers(1, size - start))
        offset.append(start)
        shape.append(length)
    return offset, shape


@st.composite
def region_requests(draw: st.DrawFn) -> tuple[str, list[Any]]:
    """A spec and a ``select`` of 1-3 of its tensors, each whole or a random region."""
    key = draw(st.sampled_from(sorted(SPECS)))
    tensors = full_tensors(key)
    names = [n for n, v in tensors.items() if v.size]
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    select: list[Any] = []
    for name in chosen:
        if draw(st.integers(0, 4)) == 0:
            select.append(name)
        else:
            offset, shape = draw(regions(tensors[name].shape))
            select.append({"name": name, "offset": offset, "shape": shape})
    return key, select


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=region_requests(),
       chunk_bytes=st.sampled_from([2, 8, 24, 100, 4096, 1 << 20]),
       threads=st.sampled_from(sorted(POOLS)))
def test_a_region_equals_the_slice_of_the_whole_tensor(request, chunk_bytes, threads):
    key, select = request
    full = full_tensors(key)
    plan = plan_of({**SPECS[key], "select": select})
    got = generate(plan, chunk_bytes=chunk_bytes, executor=POOLS[threads])
    for item in select:
        if isinstance(item, str):
            want = full[item]
        else:
            want = full[item["name"]][region_slice(item["offset"], item["shape"])]
        name = item if isinstance(item, str) else item["name"]
        assert got[name].shape == want.shape
        assert got[name].tobytes() == want.tobytes(), (key, item)


def test_every_spec_tensor_is_reachable_by_the_property_test():
    """The specs cover every initializer of the registry and every layer type."""
    from weightinit.core import REGISTRY

    seen_inits, seen_layers = set(), set()
    for key in SPECS:
        for output in plan_of(SPECS[key]).outputs:
            seen_inits.add(output.plan.init.config["name"])
            seen_layers.add(output.plan.layer_type)
    assert set(REGISTRY) <= seen_inits
    assert {"linear", "conv1d", "conv2d", "conv3d", "embedding", "layer_norm", "rms_norm",
            "group_norm", "batch_norm", "lstm", "gru", "multihead_attention",
            "tensor"} <= seen_layers


@settings(max_examples=300, deadline=None)
@given(data=st.data(), full=st.lists(st.integers(1, 6), min_size=0, max_size=5))
def test_runs_cover_the_region_in_row_major_order(data, full):
    full = tuple(full)
    offset, shape = data.draw(regions(full))
    runs = Runs.of(full, tuple(offset), tuple(shape))
    flat = np.arange(math.prod(full), dtype=np.int64).reshape(full)
    want = flat[region_slice(offset, shape)].reshape(-1)
    assert runs.numel == want.size
    assert np.array_equal(run_indices(*runs.pieces(0, runs.numel)), want)
    begin = data.draw(st.integers(0, runs.numel))
    end = data.draw(st.integers(begin, runs.numel))
    assert np.array_equal(run_indices(*runs.pieces(begin, end)), want[begin:end])


def test_a_column_region_is_one_run_per_row_and_full_rows_merge():
    column = Runs.of((4, 6), (0, 2), (4, 3))
    assert list(column) == [(2, 3), (8, 3), (14, 3), (20, 3)]
    rows = Runs.of((4, 6, 5), (1, 0, 0), (2, 6, 5))
    assert list(rows) == [(30, 60)]
    assert Runs.of((4, 6)).whole and not column.whole


@pytest.mark.parametrize("numba", [True, False])
def test_fill_runs_equals_one_fill_per_run(numba):
    from weightinit.core.rng import kernels

    kernels.use_numba(numba)
    try:
        _check_fill_runs()
    finally:
        kernels.use_numba(True)


def _check_fill_runs() -> None:
    rng = np.random.default_rng(5)
    starts = rng.integers(0, 10**6, 60)
    counts = rng.integers(0, 3000, 60)
    key = stream_key(9, "w")
    for transform in (Transform.uniform(-1, 1), Transform.normal(0, 0.02),
                      Transform.truncated_normal(0, 1, -2, 2)):
        for dtype in ("float32", "bfloat16", "float64", "float16"):
            got, moments = fill_runs(transform, key, starts, counts, dtype, True)
            want = np.concatenate([fill(transform, key, int(s), int(c), dtype)[0]
                                   for s, c in zip(starts, counts, strict=True)])
            assert got.tobytes() == want.tobytes()
            assert moments is not None and moments.count == want.size
            assert moments.mean == pytest.approx(float(np.mean(want.astype(np.float64))),
                                                 rel=1e-9, abs=1e-12)


LAYERS = [tensor_layer("w", [6, 4], {"name": "normal", "std": 1.0}),
          tensor_layer("b", [4], "zeros")]


@pytest.mark.parametrize(("item", "loc", "words"), [
    ({"name": "w", "offset": [0], "shape": [6]}, ["select", 0, "offset"], "2 dims"),
    ({"name": "w", "offset": [0, 0], "shape": [6]}, ["select", 0, "shape"], "2 dims"),
    ({"name": "w", "offset": [6, 0], "shape": [1, 4]}, ["select", 0, "offset", 0], "outside"),
    ({"name": "w", "offset": [5, 1], "shape": [2, 3]}, ["select", 0, "shape", 0], "runs past"),
    ({"name": "w", "offset": [0, 1], "shape": [1, 4]}, ["select", 0, "shape", 1], "runs past"),
    ({"name": "nope", "offset": [0], "shape": [1]}, ["select", 0], "no tensor"),
])
def test_bad_regions_name_their_field(item, loc, words):
    with pytest.raises(SpecError) as caught:
        build_plan(spec_of(LAYERS, select=[item]))
    assert list(caught.value.loc) == loc
    assert words in str(caught.value)


@pytest.mark.parametrize(("item", "loc"), [
    ({"name": "w", "offset": [0, 0], "shape": [0, 4]}, ("select", 0, "shape", 0)),
    ({"name": "w", "offset": [0, -1], "shape": [1, 4]}, ("select", 0, "offset", 1)),
    ({"name": "w", "offset": [0, 0]}, ("select", 0)),
    ({"name": "w", "offset": [0, 0], "shape": [1, 1], "size": 3}, ("select", 0, "size")),
    ({"name": "w", "offset": [0, True], "shape": [1, 1]}, ("select", 0, "offset", 1)),
    ({"name": "w", "offset": [0] * 40, "shape": [1] * 40}, ("select", 0, "offset")),
])
def test_malformed_regions_are_schema_errors_at_their_field(item, loc):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        spec_of(LAYERS, select=[item])
    assert caught.value.errors()[0]["loc"] == loc


def test_a_tensor_selected_twice_with_a_region_is_refused():
    with pytest.raises(SpecError) as caught:
        build_plan(spec_of(LAYERS, select=["w", {"name": "w", "offset": [0, 0],
                                                 "shape": [1, 4]}]))
    assert list(caught.value.loc) == ["select", 1]
    # A plain name twice stays what it always was: the tensor once.
    assert [o.name for o in build_plan(spec_of(LAYERS, select=["w", "w"])).outputs] == ["w"]


def test_regions_and_shard_together_are_refused():
    with pytest.raises(SpecError) as caught:
        build_plan(spec_of(LAYERS, select=[{"name": "w", "offset": [0, 0], "shape": [1, 4]}],
                           shard={"rank": 0, "world_size": 2}))
    assert list(caught.value.loc) == ["shard"]


def test_shard_is_the_region_of_its_rank():
    body = {"select": ["w", "b"], "shard": {"dim": 1, "rank": 1, "world_size": 2}}
    sharded = build_plan(spec_of(LAYERS, **body))
    regions = build_plan(spec_of(LAYERS, select=[
        {"name": "w", "offset": [0, 2], "shape": [6, 2]}, "b"]))
    assert [(o.name, o.shape, o.region_offset) for o in sharded.outputs] == \
        [(o.name, o.shape, o.region_offset) for o in regions.outputs]
    assert generate(sharded)["w"].tobytes() == generate(regions)["w"].tobytes()


def test_plain_names_keep_the_bytes_they_had():
    """A whole-tensor selection's file (header included) is what it was before regions."""
    spec = spec_of(LAYERS, select=["b", {"name": "w"}])
    assert spec.model_dump(mode="json", exclude_none=True)["select"] == ["b", "w"]
    assert Spec.model_validate(spec.model_dump(mode="json")).select == spec.select
    metadata = file_metadata(build_plan(spec))
    assert metadata["select"] == '["b","w"]' and "regions" not in metadata


# Golden vectors of regions: algorithm v1's bytes for parts of the golden specs. Pinned
# on their own so a change to the region path cannot hide behind the whole-tensor ones.
REGION_SELECT = [
    {"name": "uniform", "offset": [5, 3], "shape": [20, 11]},
    {"name": "kaiming_normal", "offset": [2, 1, 0, 1], "shape": [10, 6, 3, 2]},
    {"name": "dirac", "offset": [1, 0, 1, 0], "shape": [4, 4, 2, 3]},
    {"name": "sparse", "offset": [3, 4], "shape": [10, 6]},
    {"name": "truncated_normal_default", "offset": [999], "shape": [2]},
    "eye",
]
GOLDEN_REGIONS = {
    "uniform": "e9a673a9dca579fa27be188a9c7531a974b1b9e1b53c16c32734053f6f8c7fb1",
    "truncated_normal_default": "9c24809dd1a6f3c5a2e776468896da10181d5e6d28b8d93901fe9d691541f943",
    "kaiming_normal": "3d9d6bae360c0135800ba1c38cfd5d3447930524b04ed3d9bd00e9211e7ac64f",
    "eye": "3824888deca970f240a21818a3267c796f3010607b0c10c3ef18cd4bff191d47",
    "dirac": "fb5d04125e6432b59b9148a20e3171a2ba0b3bd406c74f19db596a1f7a346e83",
    "sparse": "4aca5d892376a5d68f3b45decc2003232b7cd06b97b1e6541a44d6b326026d07",
    "<file>": "b5c738a02809851e418912931bacc3551e616ab87f4e5679d32f8206dbd8c3d2",
}


def test_golden_region_digests():
    plan = plan_of({**GOLDEN_SPECS["every_initializer_float32"], "select": REGION_SELECT})
    got = digests(plan, chunk_bytes=64)
    got.pop("<data>")
    assert got == GOLDEN_REGIONS
