"""From a request body to a validated plan, off the event loop, with a small cache.

Everything that can be wrong with a request is found here, before any response starts:
JSON syntax, the schema (``core.Spec``), names, fans, ``select``/``shard`` and the limits
(``weightinit.core.build_plan``). Planning is pure Python and grows with the number of tensors, so
it runs on a worker thread, not the event loop (health checks stay prompt while a
100 000-tensor spec is planned). The result is a pure function of the body and the
limits, so recent results are kept, keyed by the body's sha256: repeated requests
(retries, every rank of a job asking for the same file, benchmarks) skip planning.

Two caches, because a plan is made of many small Python objects and every full garbage
collection walks all of them (with 50 cached 300-tensor plans a full collection took
~200 ms, a pause every request on the loop would share): the ``/v1/plan`` JSON is
cached as bytes, which the collector does not walk, and whole prepared requests only for
small models, in a budget of tensors.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from pydantic import ValidationError
from weightinit.core import LimitError, Limits, Plan, Spec, build_plan, header_bytes, plan_document
from weightinit.service.server import strict_json
from weightinit.service.server.errors import invalid_request
from weightinit.service.server.representable import check_representable
from weightinit.service.server.streaming import request_etag

# Prepared requests kept: ~80 tracked objects per tensor, so ~160 000 objects at most, a
# few ms of collector time; bigger plans are not kept (generating them dwarfs planning).
CACHE_TENSOR_BUDGET = 2048
MAX_CACHED_TENSORS = 256
PLAN_JSON_BUDGET_BYTES = 32 << 20


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
            self._plan_json = strict_json.dumps(plan_document(self.plan))
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
    plan = build_plan(spec, limits)
    check_representable(plan)
    return Prepared(spec, plan).complete(file, plan_json)


class Planner:
    """Prepares requests on a worker thread, remembering recent ones."""

    def __init__(self, limits: Limits, cache_entries: int) -> None:
        self.limits = limits
        self.cache_entries = cache_entries
        self._cache: OrderedDict[bytes, Prepared] = OrderedDict()
        self._cached_tensors = 0
        self._plan_json: OrderedDict[bytes, bytes] = OrderedDict()
        self._plan_json_bytes = 0

    async def prepare(self, raw: bytes) -> Prepared:
        """The prepared request, with its file header and ETag (for ``/v1/init``)."""
        return await self._prepare(hashlib.sha256(raw).digest(), raw, file=True)

    async def plan_json(self, raw: bytes) -> bytes:
        """The ``/v1/plan`` body for a request body."""
        key = hashlib.sha256(raw).digest()
        document = self._plan_json.get(key)
        if document is not None:
            self._plan_json.move_to_end(key)
            return document
        document = (await self._prepare(key, raw, plan_json=True)).plan_json
        if self.cache_entries and key not in self._plan_json:
            self._plan_json[key] = document
            self._plan_json_bytes += len(document)
            while (len(self._plan_json) > self.cache_entries
                   or self._plan_json_bytes > PLAN_JSON_BUDGET_BYTES):
                self._plan_json_bytes -= len(self._plan_json.popitem(last=False)[1])
        return document

    async def _prepare(self, key: bytes, raw: bytes, file: bool = False,
                       plan_json: bool = False) -> Prepared:
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
