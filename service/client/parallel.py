"""Parallel fetch: disjoint ``select`` groups from several replicas, assembled into one file.

A tensor's bytes do not depend on which other tensors were asked for (determinism rule
1), so the file is cut into groups of tensors (or of the regions the request asked for)
balanced by bytes, each group is fetched with ``select`` (from its own replica when
there are several), and each tensor's bytes are written at the offset it has in the
full file. The full file's header is computed here with the engine's own writer from the
spec (the client ships with ``core``), with the server's version string from
``/v1/plan``, and checked against the server's plan, so the assembled file is byte for
byte what one ``/v1/init`` returns.
"""

from __future__ import annotations

import copy
import heapq
import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from weightinit.core.dtypes import ITEMSIZE
from weightinit.service.client.http import Response, Transport
from weightinit.service.client.multipart import InitBody
from weightinit.service.client.receive import (
    Progress,
    ProtocolError,
    Sink,
    copy_into,
    expect_end,
    read_layout,
)

# The planning engine is imported by the functions that plan (a parallel fetch), not with
# the client: a single stream needs none of it.
if TYPE_CHECKING:
    from weightinit.core.plan import Plan


def tensor_bytes(entry: dict[str, Any]) -> int:
    """Bytes of one tensor of a plan document."""
    return math.prod(entry["shape"]) * ITEMSIZE[entry["dtype"]]


def select_item(entry: dict[str, Any], payload: dict[str, Any]) -> str | dict[str, Any]:
    """The ``select`` item that asks for one tensor of a plan document as the plan has it:
    its name, or its region when the request asked for regions (under ``shard`` the name
    is enough: the shard cuts it again)."""
    if "offset" not in entry or payload.get("shard") is not None:
        return entry["name"]
    return {"name": entry["name"], "offset": entry["offset"], "shape": entry["shape"]}


def item_name(item: str | dict[str, Any]) -> str:
    return item if isinstance(item, str) else item["name"]


def balance(tensors: list[dict[str, Any]], groups: int,
            payload: dict[str, Any] | None = None) -> list[list[str | dict[str, Any]]]:
    """Split tensors into at most ``groups`` non-empty groups of nearly equal bytes
    (largest first, each to the lightest group: within 4/3 of the best split), each
    group listing its ``select`` items (names, or regions) in file order."""
    heap = [(0, index) for index in range(min(groups, len(tensors)))]
    members: list[list[int]] = [[] for _ in heap]
    by_size = sorted(range(len(tensors)), key=lambda i: -tensor_bytes(tensors[i]))
    for position in by_size:
        load, group = heapq.heappop(heap)
        members[group].append(position)
        heapq.heappush(heap, (load + tensor_bytes(tensors[position]), group))
    return [[select_item(tensors[i], payload or {}) for i in sorted(group)]
            for group in members if group]


def full_header(payload: dict[str, Any], plan_document: dict[str, Any]) -> tuple[bytes, Plan]:
    """The header of the whole file, as the server would write it, and the local plan.
    Raises ``ProtocolError`` if this client's engine cannot plan the spec or makes
    another plan document than the server's (a server of another release: its header
    could differ), so the caller can fall back to a single fetch."""
    from pydantic import ValidationError
    from weightinit.core import Limits, Spec, SpecError, build_plan, header_bytes
    from weightinit.core.report import plan_document as plan_document_of
    from weightinit.core.safetensors_io.writer import file_metadata

    # The server already enforced its limits when it planned the request: none apply here.
    no_limits = Limits(max_tensors=1 << 40, max_parameters=1 << 62, max_depth=1 << 10,
                       max_name_bytes=1 << 30, max_whole_tensor_elements=1 << 62)
    try:
        plan = build_plan(Spec.model_validate(payload), no_limits)
    except (ValidationError, SpecError) as error:  # the server's is a newer release
        raise ProtocolError(f"this client's engine cannot plan the spec: {error}") from None
    local = json.loads(json.dumps(plan_document_of(plan)))
    provenance = {"weightinit_version", "file_bytes"}  # the version string's length
    differing = sorted(key for key in set(local) | set(plan_document)
                       if key not in provenance and local.get(key) != plan_document.get(key))
    if differing:
        raise ProtocolError(f"the server's plan differs from this client's in {differing}")
    header = header_bytes(plan, file_metadata(plan))  # no package version in it
    if plan_document.get("file_bytes") != len(header) + plan.total_bytes:
        raise ProtocolError("the server's file size differs from this client's")
    return header, plan


@dataclass
class GroupFetch:
    """Fetches the groups concurrently into one sink; closes every stream on a failure."""

    transport: Transport
    payload: dict[str, Any]
    header: bytes
    offsets: dict[str, tuple[int, dict[str, Any]]]  # name -> (file offset, header entry)
    with_report: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[Response] = set()
        self._failed = False
        self._first_error: BaseException | None = None

    def run(self, groups: list[list[str | dict[str, Any]]], sink: Sink,
            progress: Progress | None) -> list[dict[str, Any] | None]:
        """Fetch every group; returns each group's report (``None`` without reports)."""
        with sink.region(0, len(self.header)) as view:
            view[:] = self.header
        if progress is not None:
            progress.update(len(self.header))
        with ThreadPoolExecutor(len(groups), thread_name_prefix="weightinit-group") as pool:
            futures = [pool.submit(self._fetch, index, names, sink, progress)
                       for index, names in enumerate(groups)]
            for future in futures:
                future.exception()  # wait for all, whatever happened
        if self._first_error is not None:
            raise self._first_error
        return [f.result() for f in futures]

    def _fetch(self, index: int, items: list[str | dict[str, Any]], sink: Sink,
               progress: Progress | None) -> dict[str, Any] | None:
        accept = "multipart/mixed" if self.with_report else "application/octet-stream"
        names = [item_name(item) for item in items]
        try:
            response = self.transport.open("POST", "/v1/init",
                                           {**self.payload, "select": items},
                                           accept=accept, start=index)
        except BaseException as error:
            self._abort(error)
            raise
        with self._lock:
            if self._failed:
                response.close()
                raise ProtocolError("another group failed")
            self._open.add(response)
        try:
            return self._receive(response, names, sink, progress)
        except BaseException as error:
            self._abort(error)
            raise
        finally:
            with self._lock:
                self._open.discard(response)
            response.close()

    def _abort(self, error: BaseException) -> None:
        """Stop every other group at once: shutting its socket down ends a blocked read
        (each group's own thread then closes its response)."""
        with self._lock:
            if self._first_error is None:
                self._first_error = error
            self._failed = True
            for response in self._open:
                response.interrupt()

    def _receive(self, response: Response, names: list[str], sink: Sink,
                 progress: Progress | None) -> dict[str, Any] | None:
        answer = InitBody(response)
        source = answer.file
        layout = read_layout(source)
        if sorted(layout.entries) != sorted(names):
            raise ProtocolError("a group's response holds other tensors than it asked for")
        for name, entry in layout.in_data_order():
            offset, wanted = self.offsets[name]
            if (entry["dtype"], entry["shape"]) != (wanted["dtype"], wanted["shape"]):
                raise ProtocolError(f"{name}: {entry} in a group, {wanted} in the plan")
            begin, end = entry["data_offsets"]
            copy_into(source, sink, offset, end - begin, progress=progress)
        expect_end(source)
        return answer.report()


def file_offsets(header: bytes) -> dict[str, tuple[int, dict[str, Any]]]:
    """Each tensor's absolute offset in the file and its header entry."""
    entries = json.loads(header[8:])
    entries.pop("__metadata__", None)
    return {name: (len(header) + e["data_offsets"][0], e) for name, e in entries.items()}


def merged_report(plan_document: dict[str, Any], reports: list[dict[str, Any] | None],
                  file_sha256: str) -> dict[str, Any]:
    """The full file's report from the groups' reports: the whole plan, each tensor with
    what its group observed, and the sha256 of the assembled file."""
    from weightinit.core.report import layer_groups

    observed = {}
    for report in reports:
        for entry in (report or {}).get("tensors", []):
            observed[entry["name"]] = entry
    document = copy.deepcopy(plan_document)
    for entry in document["tensors"]:
        seen = observed.get(entry["name"], {})
        entry.update({key: value for key, value in seen.items() if key not in entry})
    # What the engine's report_document adds from the observed tensors, the same way.
    document["layers"] = layer_groups(document["tensors"])
    document["file_sha256"] = file_sha256
    return document
