"""From a request body to a validated plan, off the event loop, with a small cache.

Everything that can be wrong with a request is found here, before any response starts:
JSON syntax, the schema (``core.Spec``), names, fans, ``select``/``shard`` and the limits
(``core.build_plan``). Planning is pure Python and grows with the number of tensors, so
it runs on a worker thread, not the event loop (health checks stay prompt while a
100 000-tensor spec is planned). The result is a pure function of the body and the
limits, so validated requests are kept in a bounded LRU keyed by the body's sha256:
repeated requests (every rank of a sharded job, retries, benchmarks) skip planning.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass

from pydantic import ValidationError

from core import LimitError, Limits, Plan, Spec, build_plan, header_bytes, plan_document
from service.errors import invalid_request
from service.streaming import request_etag

# A cached plan costs about 2 KiB per tensor (plan objects, header, plan JSON): the
# cache holds at most this many tensors in all (~35 MiB), and none of a plan bigger than
# a quarter of that, whose planning time is small next to generating it anyway.
CACHE_TENSOR_BUDGET = 16384
MAX_CACHED_TENSORS = CACHE_TENSOR_BUDGET // 4


@dataclass
class Prepared:
    """A validated request: the spec and its plan; the file header, ETag and plan JSON
    are made on first use (``/v1/plan`` needs no header, ``/v1/init`` no plan JSON)."""

    spec: Spec
    plan: Plan
    _header: bytes | None = None
    _etag: str | None = None
    _plan_json: bytes | None = None

    @property
    def header(self) -> bytes:
        if self._header is None:
            try:
                self._header = header_bytes(self.plan)
            except ValueError as error:  # over the safetensors loaders' 100 MB limit
                raise LimitError(("layers",), str(error)) from None
        return self._header

    @property
    def etag(self) -> str:
        if self._etag is None:
            self._etag = request_etag(self.spec)
        return self._etag

    @property
    def plan_json(self) -> bytes:
        if self._plan_json is None:
            document = plan_document(self.plan)
            self._plan_json = json.dumps(document, ensure_ascii=False).encode()
        return self._plan_json

    @property
    def file_size(self) -> int:
        return len(self.header) + self.plan.total_bytes

    def missing(self, file: bool, plan_json: bool) -> bool:
        return (file and self._header is None) or (plan_json and self._plan_json is None)

    def complete(self, file: bool, plan_json: bool) -> Prepared:
        """Make what the route will need now (on the calling, worker, thread)."""
        if file:
            _ = self.header, self.etag
        if plan_json:
            _ = self.plan_json
        return self


def prepare(raw: bytes, limits: Limits, file: bool = True, plan_json: bool = False
            ) -> Prepared:
    """Validate and plan a request body (raises the 422/413 errors it deserves)."""
    try:
        spec = Spec.model_validate_json(raw)
    except ValidationError as error:
        raise invalid_request(error.errors(include_input=False, include_url=False), raw) from None
    return Prepared(spec, build_plan(spec, limits)).complete(file, plan_json)


class Planner:
    """Prepares requests on a worker thread, remembering recent ones."""

    def __init__(self, limits: Limits, cache_entries: int) -> None:
        self.limits = limits
        self.cache_entries = cache_entries
        self._cache: OrderedDict[bytes, Prepared] = OrderedDict()
        self._cached_tensors = 0

    async def prepare(self, raw: bytes, file: bool = True, plan_json: bool = False
                      ) -> Prepared:
        """The prepared request, with the header and ETag (``file``) or the plan JSON."""
        key = hashlib.sha256(raw).digest()
        cached = self._cache.get(key)
        loop = asyncio.get_running_loop()
        if cached is not None:
            self._cache.move_to_end(key)
            if cached.missing(file, plan_json):
                await loop.run_in_executor(None, cached.complete, file, plan_json)
            return cached
        prepared = await loop.run_in_executor(None, prepare, raw, self.limits, file, plan_json)
        tensors = len(prepared.plan.outputs)
        if self.cache_entries and tensors <= MAX_CACHED_TENSORS and key not in self._cache:
            self._cache[key] = prepared
            self._cached_tensors += tensors
            while (len(self._cache) > self.cache_entries
                   or self._cached_tensors > CACHE_TENSOR_BUDGET):
                _, evicted = self._cache.popitem(last=False)
                self._cached_tensors -= len(evicted.plan.outputs)
        return prepared
