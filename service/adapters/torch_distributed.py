"""Weights into a torch.distributed model: every rank fetches exactly its own shards.

    with torch.device("meta"):
        model = Transformer(config)
    fully_shard(...) / parallelize_module(...)         # parameters become DTensors
    result = load_sharded(model, ["http://a:8000", "http://b:8000"], spec)

Each rank asks for the regions of the full tensors it holds (``select`` items
``{name, offset, shape}``: DTensor's global offset and local shape, uneven ``torch.chunk``
shards included), and the response's bytes are read from the socket straight into the
local shards: no rank builds a full tensor of a sharded parameter, and memory beyond the
shards themselves is a header and a socket buffer per request. Regions are bitwise the
slices of the whole tensor (``docs/determinism.md``), so the model equals, after an
all-gather, the single-process file, whatever the mesh. Replicated tensors (and plain
tensors, buffers) are fetched whole, once per rank. A rank's requests are split into
groups balanced by bytes and sent in parallel, group ``g`` of rank ``r`` to replica
``(r * groups + g) mod replicas``, so the ranks together spread over every replica.
``source=None`` generates in-process with the engine instead (same bytes).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightinit.core.dtypes import ITEMSIZE, SAFETENSORS_DTYPE, numpy_dtype_of_code
from weightinit.service.adapters.torch_helpers import as_torch, state_tensors, tied_names

DEFAULT_REQUESTS_PER_REPLICA = 2
# How long a rank keeps asking replicas that answer "at capacity" (503/429): every rank of
# a job asks at once, ranks x requests_per_replica streams per replica, far more than a
# server takes at a time (WEIGHTINIT_MAX_CONCURRENT_STREAMS), so most requests wait
# their turn.
DEFAULT_BUSY_WAIT_S = 1800.0
_AT_CAPACITY = frozenset({429, 503})


@dataclass(frozen=True)
class LocalRegion:
    """The part of one full tensor a rank holds: where it goes and what to ask for."""

    name: str
    full_shape: tuple[int, ...]
    offset: tuple[int, ...]
    shape: tuple[int, ...]
    target: Any  # the local torch tensor the bytes go into
    sharded: bool  # a proper part of the tensor (not replicated, not a plain tensor)

    @property
    def empty(self) -> bool:
        return math.prod(self.shape) == 0

    def select_item(self) -> str | dict[str, Any]:
        """The ``select`` item: the name for a whole tensor, else the region."""
        if not self.sharded:
            return self.name
        return {"name": self.name, "offset": list(self.offset), "shape": list(self.shape)}


@dataclass
class ShardedLoadResult:
    """What one rank did: tensors filled, requests sent, bytes received (the bodies:
    safetensors headers plus data) and tensors skipped because this rank holds none of
    them (empty ``torch.chunk`` shards); ``missing_keys``: model tensors the spec lacks."""

    tensors: int = 0
    requests: int = 0
    header_bytes: int = 0
    data_bytes: int = 0
    empty: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)
    replicas_used: list[str] = field(default_factory=list)

    @property
    def bytes_received(self) -> int:
        return self.header_bytes + self.data_bytes


def _chunk_of(tensor: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(global offset, local shape) of a DTensor's local shard on this rank.

    ``DTensor.__create_chunk_list__`` is the protocol distributed checkpointing reads
    shards through; the private ``compute_local_shape_and_global_offset`` is the fallback.
    """
    create = getattr(tensor, "__create_chunk_list__", None)
    if create is not None:
        chunks = create()
        if len(chunks) == 1:
            return tuple(int(v) for v in chunks[0].offsets), tuple(int(v)
                                                                   for v in chunks[0].sizes)
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    shape, offset = compute_local_shape_and_global_offset(tensor.shape, tensor.device_mesh,
                                                          tensor.placements)
    return tuple(offset), tuple(shape)


def _is_dtensor(tensor: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def local_regions(model: Any) -> list[LocalRegion]:
    """Every weight of the model (parameters and persistent buffers, tied aliases once) as
    the region this rank holds of it."""
    aliases = tied_names(model)
    regions = []
    for name, tensor, _ in state_tensors(model, ""):
        if name in aliases:
            continue
        full = tuple(int(v) for v in tensor.shape)
        if _is_dtensor(tensor):
            if any(p.is_partial() for p in tensor.placements):
                raise ValueError(f"{name}: a Partial placement holds no region of the weights")
            offset, shape = _chunk_of(tensor)
            target = tensor.to_local()
            if tuple(target.shape) != shape:
                raise ValueError(f"{name}: local tensor {tuple(target.shape)} but the "
                                 f"shard is {shape}")
            sharded = shape != full
        else:
            offset, shape, target, sharded = (0,) * len(full), full, tensor, False
        regions.append(LocalRegion(name, full, offset, shape, target, sharded))
    return regions


def _materialize(model: Any, device: Any) -> None:
    """Give tensors still on the meta device real (uninitialised) storage on ``device``,
    keeping the values of buffers that already had them (rotary ``inv_freq``: made by the
    model's code, not weights)."""
    tensors = list(model.parameters()) + list(model.buffers())

    def on_meta(tensor: Any) -> bool:
        local = tensor.to_local() if _is_dtensor(tensor) else tensor
        return local.device.type == "meta"

    if not any(on_meta(t) for t in tensors):
        return
    kept = {name: buffer.detach().clone() for name, buffer in model.named_buffers()
            if not on_meta(buffer)}
    weights = {name for name, _, _ in state_tensors(model, "")}
    computed = sorted(name for name, buffer in model.named_buffers()
                      if on_meta(buffer) and name not in weights)
    if computed:  # no weights file holds them: after to_empty they are garbage
        warnings.warn(f"{', '.join(computed)}: non-persistent buffers on the meta device "
                      "(values the model's code computes, not weights) get uninitialised "
                      "memory; build the model inside weightinit.torch.empty_weights() so "
                      "they keep their values, or recompute them after loading",
                      stacklevel=3)
    model.to_empty(device=device)
    import torch

    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name in kept:
                buffer.copy_(kept[name])


def _groups(regions: list[LocalRegion], count: int) -> list[list[LocalRegion]]:
    """At most ``count`` non-empty groups of nearly equal bytes (largest first, each to
    the lightest group)."""
    loads = [0] * max(1, min(count, len(regions)))
    members: list[list[LocalRegion]] = [[] for _ in loads]
    for region in sorted(regions, key=lambda r: -math.prod(r.shape)):
        lightest = loads.index(min(loads))
        members[lightest].append(region)
        loads[lightest] += math.prod(region.shape) * region.target.element_size()
    return [group for group in members if group]


def _flat_bytes(target: Any) -> Any:
    """A writable uint8 numpy view of a contiguous tensor's storage."""
    import torch

    if target.dim() == 0:
        target = target.reshape(1)
    return target.view(torch.uint8).reshape(-1).numpy()


class _Receiver:
    """Copies one group's tensors, as they arrive, into their local shards."""

    def __init__(self, by_name: dict[str, LocalRegion], result: ShardedLoadResult,
                 lock: threading.Lock) -> None:
        self.by_name = by_name
        self.result = result
        self.lock = lock

    def into(self, name: str, dtype_code: str, shape: list[int]) -> tuple[Any, Any]:
        """The uint8 view to read a tensor's bytes into, and the target when a cast is
        needed afterwards (the file's dtype differs from the model's, or the target is
        not contiguous), else None."""
        import torch

        region = self.by_name.get(name)
        if region is None or tuple(shape) != region.shape:
            raise ValueError(f"{name}: received shape {shape}, expected "
                             f"{region.shape if region else 'nothing'}")
        target = region.target
        wanted = numpy_dtype_of_code(dtype_code)
        same = (target.is_contiguous() and target.device.type == "cpu"
                and target.element_size() == wanted.itemsize
                and _torch_code(target.dtype) == dtype_code)
        if same:
            return _flat_bytes(target), None
        staging = torch.empty(math.prod(shape) * wanted.itemsize, dtype=torch.uint8)
        return staging.numpy(), target

    def done(self, name: str, staged: Any, target: Any, dtype_code: str) -> None:
        if target is not None:
            import torch

            values = as_torch(staged.view(numpy_dtype_of_code(dtype_code)))
            with torch.no_grad():
                target.copy_(values.reshape(target.shape))
        with self.lock:
            self.result.tensors += 1


def _torch_code(dtype: Any) -> str | None:
    """The safetensors code of a torch dtype (None for dtypes the service never makes)."""
    return SAFETENSORS_DTYPE.get(str(dtype).removeprefix("torch."))


def _open_when_free(transport: Any, payload: dict[str, Any], start: int,
                    busy_wait_s: float) -> Any:
    """The started response to ``POST /v1/init``. The transport retries a refusal a few
    times (honouring ``Retry-After``, moving to the next replica); while replicas keep
    answering "at capacity", ask again until ``busy_wait_s`` has passed. Other errors,
    and unreachable replicas, raise as the transport gives them."""
    from weightinit.service.client.http import WeightinitError

    deadline = time.monotonic() + busy_wait_s
    attempt = 0
    while True:
        try:
            return transport.open("POST", "/v1/init", payload,
                                  accept="application/octet-stream", start=start + attempt)
        except WeightinitError as error:
            if error.status not in _AT_CAPACITY or time.monotonic() >= deadline:
                raise
            attempt += 1


def _fetch_http(transport: Any, payload: dict[str, Any], start: int, receiver: _Receiver,
                result: ShardedLoadResult, lock: threading.Lock,
                busy_wait_s: float = DEFAULT_BUSY_WAIT_S) -> None:
    """One request: the group's regions read from the socket into their shards."""
    from weightinit.service.client.receive import expect_end, read_layout

    with _open_when_free(transport, payload, start, busy_wait_s) as response:
        layout = read_layout(response)
        received = 0
        for name, entry in layout.in_data_order():
            begin, end = entry["data_offsets"]
            if begin != received:
                raise ValueError(f"{name}: data does not follow the previous tensor")
            view, target = receiver.into(name, entry["dtype"], entry["shape"])
            if view.nbytes != end - begin:
                raise ValueError(f"{name}: {end - begin} bytes in the file, {view.nbytes} "
                                 "expected")
            memory = memoryview(view).cast("B")
            filled = 0
            while filled < len(memory):
                count = response.readinto(memory[filled:])
                if not count:
                    raise ValueError(f"{name}: the body ended early")
                filled += count
            receiver.done(name, view, target, entry["dtype"])
            received = end
        expect_end(response)
        with lock:
            result.requests += 1
            result.header_bytes += len(layout.header)
            result.data_bytes += received
            endpoint = str(response.endpoint)
            if endpoint not in result.replicas_used:
                result.replicas_used.append(endpoint)


def _generate_local(payload: dict[str, Any], receiver: _Receiver,
                    result: ShardedLoadResult, lock: threading.Lock) -> None:
    """The in-process source: the engine generates the group's regions into the shards."""
    from weightinit.core import ChunkStream, Spec, build_plan, header_bytes

    plan = build_plan(Spec.model_validate(payload))
    views: dict[str, tuple[Any, Any, int]] = {}
    for chunk in ChunkStream(plan):
        output = chunk.output
        code = SAFETENSORS_DTYPE[output.plan.dtype]
        if output.name not in views:
            view, target = receiver.into(output.name, code, list(output.shape))
            views[output.name] = (view, target, 0)
        view, target, filled = views[output.name]
        data = chunk.buffer
        view[filled : filled + len(data)] = data
        views[output.name] = (view, target, filled + len(data))
        if chunk.last:
            receiver.done(output.name, view, target, code)
    with lock:
        result.requests += 1
        result.header_bytes += len(header_bytes(plan))
        result.data_bytes += plan.total_bytes


def _payload(spec: Any) -> dict[str, Any]:
    if isinstance(spec, dict):
        return dict(spec)
    if isinstance(spec, os.PathLike):
        return json.loads(Path(spec).read_text())
    if hasattr(spec, "model_dump"):
        return spec.model_dump(mode="json", exclude_none=True)
    raise TypeError("a spec is a dict, a pathlib.Path of a JSON file or a core.Spec")


def _transport(source: Any, token: str | None, timeout: float,
               connections: int = DEFAULT_REQUESTS_PER_REPLICA + 1) -> Any:
    """The HTTP transport of a source: a URL, a list of replica URLs (a transport of its
    own, keeping ``connections`` per replica alive), or a ``Client`` (the client's)."""
    from weightinit.service.client.client import Client
    from weightinit.service.client.http import Endpoint, Transport

    if isinstance(source, Client):
        return source.transport
    urls = [source] if isinstance(source, str) else list(source)
    if not urls:
        raise ValueError("give at least one server URL")
    return Transport([Endpoint.parse(u) for u in urls], token=token, timeout_s=timeout,
                     connections=connections)


def _spec_tensors(payload: dict[str, Any], transport: Any) -> dict[str, dict[str, Any]]:
    """Name -> plan entry of every tensor of the spec (full shapes and dtypes)."""
    whole = {k: v for k, v in payload.items() if k not in ("select", "shard")}
    if transport is None:
        from weightinit.core import Spec, build_plan
        from weightinit.core.report import plan_document

        document = plan_document(build_plan(Spec.model_validate(whole)))
    else:
        document = transport.json("POST", "/v1/plan", whole)
    return {entry["name"]: entry for entry in document["tensors"]}


def load_sharded(model: Any, source: str | Sequence[str] | Any | None = None,
                 spec: Any = None, *, seed: int | None = None, token: str | None = None,
                 device: Any = "cpu", requests_per_replica: int = DEFAULT_REQUESTS_PER_REPLICA,
                 timeout: float = 300.0, busy_wait_s: float = DEFAULT_BUSY_WAIT_S,
                 rank: int | None = None, **spec_options: Any) -> ShardedLoadResult:
    """Fill this rank's shards of ``model`` (parameters that are DTensors, from
    ``fully_shard``, ``parallelize_module`` or both, and plain tensors) with the weights
    of ``spec``, fetching only this rank's regions.

    ``source``: a server URL, a list of replica URLs, a ``weightinit.Client``, or None to
    generate in-process. ``spec``: a dict, a ``pathlib.Path`` of a JSON file or a
    ``Spec`` (any of the spec's model sources: ``layers``, ``huggingface``...); without
    one, the spec is ``spec_from_model(model, seed, **spec_options)``. Tensors still on
    the meta device get storage on ``device`` first (buffers that already had values keep
    them). Every rank calls this; no collective is used. Replicas answering "at
    capacity" (503/429: every rank asks at once) are asked again until ``busy_wait_s``
    has passed; ``timeout`` is per connect and socket read. Raises ``ValueError`` when a
    model tensor's global shape differs from the spec's.
    """
    if spec is None:
        if seed is None:
            raise ValueError("give a spec, or a seed to make one from the model")
        from weightinit.service.adapters.torch_helpers import spec_from_model

        spec = spec_from_model(model, seed, **spec_options)
    payload = _payload(spec)
    payload.pop("shard", None)
    transport = None if source is None else _transport(source, token, timeout,
                                                       max(1, requests_per_replica) + 1)
    try:
        return _load_sharded(model, payload, transport, rank, device, requests_per_replica,
                             busy_wait_s)
    finally:
        if transport is not None and transport is not getattr(source, "transport", None):
            transport.close()  # its own, not a client's


def _load_sharded(model: Any, payload: dict[str, Any], transport: Any, rank: int | None,
                  device: Any, requests_per_replica: int,
                  busy_wait_s: float) -> ShardedLoadResult:
    if rank is None:
        import torch.distributed as dist

        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0

    known = _spec_tensors(payload, transport)
    _materialize(model, device)
    result = ShardedLoadResult()
    wanted = []
    for region in local_regions(model):
        entry = known.get(region.name)
        if entry is None:
            result.missing_keys.append(region.name)
            continue
        if tuple(entry["shape"]) != region.full_shape:
            raise ValueError(f"{region.name}: the model's global shape is "
                             f"{list(region.full_shape)}, the spec's {entry['shape']}")
        if region.empty:
            result.empty.append(region.name)
            continue
        wanted.append(region)

    fill_regions(wanted, transport, payload, rank=rank,
                 requests_per_replica=requests_per_replica, result=result,
                 busy_wait_s=busy_wait_s)
    return result


def plan_requests(regions: list[LocalRegion], replicas: int, requests_per_replica: int,
                  rank: int) -> list[tuple[int, list[LocalRegion]]]:
    """One rank's requests: ``(replica index, regions)``, the non-empty regions split into
    at most ``replicas * requests_per_replica`` groups of nearly equal bytes, group ``g``
    of rank ``r`` sent to replica ``(r * groups + g) mod replicas`` (the ranks together
    use every replica even when each has fewer groups than there are replicas)."""
    groups = _groups([r for r in regions if not r.empty],
                     max(1, replicas) * max(1, requests_per_replica))
    return [((rank * len(groups) + index) % max(1, replicas), group)
            for index, group in enumerate(groups)]


def fill_regions(regions: list[LocalRegion], transport: Any, payload: dict[str, Any], *,
                 rank: int = 0, requests_per_replica: int = DEFAULT_REQUESTS_PER_REPLICA,
                 result: ShardedLoadResult | None = None,
                 busy_wait_s: float = DEFAULT_BUSY_WAIT_S) -> ShardedLoadResult:
    """Fetch ``regions`` (each into its ``target``) with the spec ``payload``: over
    ``transport`` (a ``weightinit.service.client.http.Transport``), in parallel requests
    spread over its replicas, or generated in-process when ``transport`` is None.
    ``load_sharded`` calls it with the regions of this rank's DTensors; any regions will
    do (a ``LocalRegion`` whose target is a plain tensor of the region's shape)."""
    result = result if result is not None else ShardedLoadResult()
    replicas = 1 if transport is None else len(transport.endpoints)
    requests = plan_requests(regions, replicas, requests_per_replica, rank)
    lock = threading.Lock()
    receiver = _Receiver({r.name: r for _, group in requests for r in group}, result, lock)

    def fetch(replica: int, group: list[LocalRegion]) -> None:
        body = {**payload, "select": [r.select_item() for r in group]}
        if transport is None:
            _generate_local(body, receiver, result, lock)
        else:
            _fetch_http(transport, body, replica, receiver, result, lock, busy_wait_s)

    if len(requests) <= 1:
        for replica, group in requests:
            fetch(replica, group)
    else:
        with ThreadPoolExecutor(len(requests), thread_name_prefix="weightinit-shards") as pool:
            for future in [pool.submit(fetch, *request) for request in requests]:
                future.result()
    return result


def expected_bytes(regions: list[LocalRegion], spec_tensors: dict[str, dict[str, Any]]) -> int:
    """The data bytes a rank's regions take in the spec's dtypes (what it should receive)."""
    return sum(math.prod(r.shape) * ITEMSIZE[spec_tensors[r.name]["dtype"]]
               for r in regions if r.name in spec_tensors)
