"""``load_sharded``'s planning and filling without torchrun: the checks of the torchrun
tests (``test_torch_distributed.py``) that need no second process, in seconds.

* Every rank of an FSDP2 mesh of 4 (uneven ``torch.chunk`` shards, an empty one), tensor
  parallelism on 2 (colwise and rowwise) and TP 2 x FSDP 2 (the strided shards FSDP makes
  on top of TP), in one process: each rank's regions as DTensor computes them (torch's
  local shape and global offset for the placements those layouts give), filled by
  ``fill_regions`` from the live server and in-process; put back together they are the
  single-process file, bitwise, each element held once per copy.
* ``plan_requests``: every region once, groups balanced by bytes, replicas spread.
* ``load_sharded`` itself on a real gloo group of world size 1 (``fully_shard`` on a
  1-rank mesh, so every region is the whole tensor): bytes and requests, buffers computed
  by the model kept, missing keys, a wrong global shape and a Partial placement refused.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from torch.distributed.device_mesh import init_device_mesh  # noqa: E402
from torch.distributed.fsdp import fully_shard  # noqa: E402
from torch.distributed.tensor import DTensor, Partial, Replicate, Shard  # noqa: E402
from torch.distributed.tensor._utils import (  # noqa: E402
    _compute_local_shape_and_global_offset,
)
from torch.distributed.tensor.placement_types import _StridedShard  # noqa: E402
from weightinit.core import ChunkStream, Spec, build_plan  # noqa: E402
from weightinit.service.adapters.torch_distributed import (  # noqa: E402
    LocalRegion,
    ShardedLoadResult,
    _transport,
    fill_regions,
    plan_requests,
)

from weightinit.torch import load_sharded, spec_from_model  # noqa: E402

NORMAL = {"name": "normal", "mean": 0.0, "std": 0.02}
# Tensors as the layouts of the torchrun tests shard them: a vocabulary of 32003 rows
# (divides by no rank count), a 3-row head (the fourth FSDP rank holds none of it), a
# bfloat16 matrix, and an orthogonal one (a whole-tensor initializer, sliced).
TENSORS = {
    "embed": ([32003, 16], "float32", NORMAL),
    "head.bias": ([3], "float32", {"name": "uniform", "low": -1.0, "high": 1.0}),
    "proj": ([24, 40], "bfloat16", NORMAL),
    "ortho": ([12, 10], "float32", {"name": "orthogonal", "gain": 1.0}),
}
SPEC = {"seed": 20261205, "convention": "torch", "layers": [
    {"type": "tensor", "name": name, "shape": shape, "dtype": dtype, "init": init}
    for name, (shape, dtype, init) in TENSORS.items()]}
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# (mesh shape, placements per tensor): what fully_shard, parallelize_module and both on a
# (dp, tp) mesh give these tensors.
LAYOUTS = {
    "fsdp4": ((4,), {name: (Shard(0),) for name in TENSORS}),
    "tp2": ((2,), {"embed": (Shard(1),), "head.bias": (Replicate(),), "proj": (Shard(0),),
                   "ortho": (Shard(1),)}),
    "tp2xfsdp2": ((2, 2), {"embed": (_StridedShard(0, split_factor=2), Shard(0)),
                           "head.bias": (Shard(0), Replicate()),
                           "proj": (Shard(0), Shard(1)),
                           "ortho": (_StridedShard(0, split_factor=2), Shard(0))}),
}


@pytest.fixture(scope="module")
def whole() -> dict[str, np.ndarray]:
    """The single-process file's tensors, in their full shapes."""
    plan = build_plan(Spec.model_validate(SPEC))
    pieces: dict[str, list[np.ndarray]] = {}
    for chunk in ChunkStream(plan):
        pieces.setdefault(chunk.output.name, []).append(chunk.data)
    return {o.name: np.concatenate(pieces[o.name]).reshape(o.shape) for o in plan.outputs}


def rank_regions(layout: str, coordinate: tuple[int, ...]) -> list[LocalRegion]:
    """The regions a rank at ``coordinate`` of the layout's mesh holds, into empty tensors."""
    mesh_shape, placements = LAYOUTS[layout]
    regions = []
    for name, (full, dtype, _) in TENSORS.items():
        shape, offset = _compute_local_shape_and_global_offset(
            full, mesh_shape, list(coordinate), placements[name])
        target = torch.empty(tuple(shape), dtype=TORCH_DTYPES[dtype])
        regions.append(LocalRegion(name, tuple(full), tuple(offset), tuple(shape), target,
                                   tuple(shape) != tuple(full)))
    return regions


def as_bytes(tensor: Any) -> bytes:
    return tensor.contiguous().view(torch.uint8).numpy().tobytes()


@pytest.mark.parametrize("source", ["http", "in-process"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_rank_of_a_mesh_gets_its_slices_of_the_file(layout, source, whole, server):
    mesh_shape, placements = LAYOUTS[layout]
    transport = _transport(server.url, None, 60.0) if source == "http" else None
    held = {name: np.zeros(full, dtype=np.int64) for name, (full, _, _) in TENSORS.items()}
    total_data = 0
    for rank, coordinate in enumerate(itertools.product(*map(range, mesh_shape))):
        regions = rank_regions(layout, coordinate)
        result = fill_regions(regions, transport, SPEC, rank=rank)
        for region in regions:
            index = tuple(slice(o, o + s) for o, s in zip(region.offset, region.shape,
                                                            strict=True))
            expected = np.ascontiguousarray(whole[region.name][index]).tobytes()
            assert as_bytes(region.target) == expected, (layout, coordinate, region.name)
            held[region.name][index] += 1
        nonempty = [r for r in regions if not r.empty]
        assert result.tensors == len(nonempty)
        assert result.data_bytes == sum(r.target.nbytes for r in nonempty)
        assert result.requests == len(plan_requests(nonempty, 1, 2, rank))
        total_data += result.data_bytes
    for name, counts in held.items():
        copies = math.prod(size for size, placement in zip(mesh_shape, placements[name],
                                                            strict=True)
                           if placement.is_replicate())
        assert (counts == copies).all(), (layout, name)
    if layout == "fsdp4":  # nothing replicated: the ranks' bytes are the file's, once
        assert total_data == sum(array.nbytes for array in whole.values())


def test_an_fsdp_rank_past_the_rows_holds_nothing_and_asks_for_nothing():
    last = {r.name: r for r in rank_regions("fsdp4", (3,))}
    assert last["head.bias"].empty and last["embed"].shape == (8000, 16)
    assert all(r.name != "head.bias" for _, group in plan_requests(list(last.values()), 1, 2, 3)
               for r in group)
    result = fill_regions(list(last.values()), None, SPEC, rank=3)
    assert result.tensors == 3


def regions_of_bytes(sizes: list[int]) -> list[LocalRegion]:
    return [LocalRegion(f"t{i}", (size,), (0,), (size,), torch.empty(size, dtype=torch.uint8),
                        False) for i, size in enumerate(sizes)]


@pytest.mark.parametrize(("replicas", "per_replica"), [(1, 1), (1, 2), (2, 2), (3, 1)])
def test_requests_take_every_region_once_in_groups_balanced_by_bytes(replicas, per_replica):
    sizes = [1000, 900, 500, 500, 400, 300, 200, 100, 100, 5]
    regions = regions_of_bytes(sizes)
    requests = plan_requests(regions, replicas, per_replica, rank=0)
    assert len(requests) == min(len(sizes), replicas * per_replica)
    names = sorted(r.name for _, group in requests for r in group)
    assert names == sorted(r.name for r in regions)
    loads = [sum(r.target.nbytes for r in group) for _, group in requests]
    # Largest first into the lightest group: no group exceeds the mean by more than the
    # largest region (the greedy bound).
    assert max(loads) - sum(loads) / len(loads) <= max(sizes)
    assert {replica for replica, _ in requests} == set(range(min(replicas, len(requests))))


def test_ranks_with_one_request_each_spread_over_every_replica():
    regions = regions_of_bytes([64])
    used = {plan_requests(regions, 3, 2, rank)[0][0] for rank in range(6)}
    assert used == {0, 1, 2}
    assert plan_requests([], 2, 2, 0) == []


class Small(torch.nn.Module):
    """Two layers of the spec language and a buffer the model computes (not a weight)."""

    def __init__(self, vocab: int = 101) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, 8)
        self.proj = torch.nn.Linear(8, 5)
        self.norm = torch.nn.LayerNorm(5)


@pytest.fixture(scope="module")
def one_rank_group() -> Iterator[None]:
    """A real gloo process group of world size 1, in this process."""
    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def meta_fsdp_model(vocab: int = 101) -> Small:
    with torch.device("meta"):
        model = Small(vocab)
    model.register_buffer("positions", torch.arange(6.0), persistent=False)  # computed
    mesh = init_device_mesh("cpu", (1,))
    fully_shard(model.proj, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def file_of(spec: dict[str, Any]) -> dict[str, bytes]:
    plan = build_plan(Spec.model_validate(spec))
    out: dict[str, bytearray] = {}
    for chunk in ChunkStream(plan):
        out.setdefault(chunk.output.name, bytearray()).extend(chunk.buffer)
    return {name: bytes(data) for name, data in out.items()}


@pytest.mark.parametrize("source", ["http", "in-process"])
def test_load_sharded_fills_a_meta_fsdp_model_on_one_rank(one_rank_group, server, source):
    model = meta_fsdp_model()
    spec = spec_from_model(model, 7)
    result = load_sharded(model, server.url if source == "http" else None, spec)
    assert isinstance(result, ShardedLoadResult)
    expected = file_of(spec)
    state = model.state_dict()
    assert set(state) == set(expected)
    for name, tensor in state.items():
        assert isinstance(tensor, DTensor) and tensor.placements == (Shard(0),)
        assert as_bytes(tensor.to_local()) == expected[name], name
    assert result.tensors == len(expected) and not result.missing_keys and not result.empty
    assert result.data_bytes == sum(map(len, expected.values()))
    assert result.requests == 2 and result.header_bytes > 0
    assert torch.equal(model.positions, torch.arange(6.0))  # the model's values kept
    if source == "http":
        assert result.replicas_used == [server.url]


def test_a_tensor_the_spec_lacks_is_reported_missing(one_rank_group):
    model = meta_fsdp_model()
    spec = spec_from_model(model, 7)
    spec["layers"] = [layer for layer in spec["layers"] if layer["name"] != "norm"]
    result = load_sharded(model, None, spec)
    assert sorted(result.missing_keys) == ["norm.bias", "norm.weight"]
    assert result.tensors == 3


def test_a_model_of_another_shape_than_the_spec_is_refused(one_rank_group):
    spec = spec_from_model(meta_fsdp_model(vocab=101), 7)
    with pytest.raises(ValueError, match=r"embed\.weight: the model's global shape is "
                                         r"\[102, 8\], the spec's \[101, 8\]"):
        load_sharded(meta_fsdp_model(vocab=102), None, spec)


def test_a_partial_placement_is_refused(one_rank_group):
    model = torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False))
    spec = spec_from_model(model, 1)
    mesh = init_device_mesh("cpu", (1,))
    model[0].weight = torch.nn.Parameter(DTensor.from_local(torch.zeros(2, 3), mesh,
                                                            [Partial()]))
    with pytest.raises(ValueError, match=r"0\.weight: a Partial placement"):
        load_sharded(model, None, spec)


def test_computed_buffers_left_on_meta_are_warned_about(one_rank_group):
    """A model built under torch.device("meta") has its rotary-style buffers on meta: no
    weights file fills them, so load_sharded says so instead of leaving garbage quietly."""
    with torch.device("meta"):
        model = Small()
        model.register_buffer("inv_freq", torch.arange(4.0), persistent=False)
    fully_shard(model, mesh=init_device_mesh("cpu", (1,)))
    with pytest.warns(UserWarning, match=r"^inv_freq: non-persistent buffers on the meta"):
        result = load_sharded(model, None, spec_from_model(model, 7))
    assert result.tensors == 5


# Each rank's part takes 16 MB: long enough a stream that four asking at once collide.
BUSY_SPEC = {"seed": 5, "layers": [{"type": "tensor", "name": "w", "shape": [8000, 2048],
                                    "init": NORMAL}]}


def test_ranks_wait_their_turn_at_a_replica_at_capacity():
    """A server taking one stream at a time, four ranks asking at once through a client
    that does not retry by itself: the requests refused with 503 are asked again until
    served (the server counts the refusals), and every rank's region arrives intact."""
    from concurrent.futures import ThreadPoolExecutor

    from live_server import start_server

    from weightinit import Client

    def rank_region(rank: int) -> LocalRegion:
        return LocalRegion("w", (8000, 2048), (2000 * rank, 0), (2000, 2048),
                           torch.empty(2000, 2048), True)

    regions = [rank_region(rank) for rank in range(4)]
    busy = start_server(max_concurrent_streams="1", retry_after_s="1")
    try:
        with Client(busy.url, retries=0) as client, ThreadPoolExecutor(4) as ranks:
            results = list(ranks.map(
                lambda rank: fill_regions([regions[rank]], client._transport, BUSY_SPEC,
                                          rank=rank, busy_wait_s=120.0), range(4)))
        assert busy.metric("weightinit_streams_rejected_total", reason="capacity") > 0
    finally:
        busy.stop()
    assert [r.tensors for r in results] == [1, 1, 1, 1]
    for rank, region in enumerate(regions):
        expected = rank_region(rank)
        fill_regions([expected], None, BUSY_SPEC)
        assert torch.equal(region.target, expected.target)
