"""The Python client: plan, report and fetch weights from one or several weightinit servers.

    from weightinit import Client

    with Client("http://127.0.0.1:8000") as client:
        client.plan(spec)                                    # tensors, fans, expectations
        arrays = client.init(spec)                           # {name: numpy array}
        client.init(spec, "model.safetensors", progress=True, verify_sha256=True)
        info, report = client.init_with_report(spec, "model.safetensors")

    # several replicas (or parallel=N streams): disjoint tensor groups fetched at once,
    # assembled into the same bytes a single fetch gives
    with Client(["http://a:8000", "http://b:8000"]) as client:
        client.init(spec, "model.safetensors")

Requests go through urllib3 (a pool of kept-alive connections per server, its ``Retry``
for 503/429 and ``Retry-After``); bodies are read with ``readinto`` straight into their
final place, written atomically (a temporary file renamed at the end) and hashed on the
way. Errors are ``WeightinitError`` with the server's ``status``, ``code`` and
``details``. More in docs/client.md.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from weightinit.service.client.http import ChecksumError, Endpoint, Transport, WeightinitError
from weightinit.service.client.multipart import InitBody
from weightinit.service.client.parallel import (
    GroupFetch,
    balance,
    file_offsets,
    full_header,
    merged_report,
)
from weightinit.service.client.receive import (
    FileSink,
    HashFollower,
    Layout,
    MemorySink,
    ProtocolError,
    Sink,
    Source,
    arrays_from_buffer,
    copy_into,
    expect_end,
    parse_header,
    read_layout,
    tensors_from_buffer,
)

__all__ = ["ChecksumError", "Client", "DownloadedFile", "WeightinitError"]

SpecLike = dict[str, Any] | os.PathLike[str] | Any  # a dict, a JSON file, or a core.Spec
Arrays = dict[str, np.ndarray]  # name -> array, in file order


def _payload(spec: SpecLike) -> dict[str, Any]:
    """The request body for a spec given as a dict, a path to a JSON file or a ``Spec``."""
    if isinstance(spec, dict):
        return spec
    if isinstance(spec, os.PathLike):
        return json.loads(Path(spec).read_text())
    if hasattr(spec, "model_dump"):
        return spec.model_dump(mode="json", exclude_none=True)
    raise TypeError(f"a spec is a dict, a pathlib.Path of a JSON file or a core.Spec, not "
                    f"{type(spec)} (a str is not taken as a path)")


class _Progress:
    """A tqdm bar that several download threads may update."""

    def __init__(self, enabled: bool, total: int | None, description: str) -> None:
        self._lock = threading.Lock()
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                             desc=description, leave=True)

    def update(self, count: int) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclass(frozen=True)
class DownloadedFile:
    """A file ``init`` wrote: its ``path``, its size in ``bytes`` and its ``file_sha256``
    (hex; None when ``sha256=False`` skipped the hash). It is the file's ``os.PathLike``."""

    path: Path
    bytes: int
    file_sha256: str | None

    def __fspath__(self) -> str:
        """The file's path: a ``DownloadedFile`` is an ``os.PathLike``, so it can be
        opened or handed to ``load_weights`` as it is."""
        return os.fspath(self.path)

    def __getitem__(self, key: str) -> Any:
        """Deprecated: ``info["bytes"]`` as when ``init`` returned a dict (``"path"`` a
        ``str``); use the attributes."""
        warnings.warn("DownloadedFile is no longer a dict: use info.path, info.bytes and "
                      "info.file_sha256", DeprecationWarning, stacklevel=2)
        if key not in ("path", "bytes", "file_sha256"):
            raise KeyError(key)
        value = getattr(self, key)
        return str(value) if key == "path" else value


class Client:
    """A weightinit server (or several equivalent replicas) seen from Python.

    ``timeout`` is seconds per connect and per socket read; ``retries`` how often a
    request refused with 503/429 (after ``Retry-After``) or unreachable before the answer
    started is tried again; ``backoff`` the base of the exponential wait between tries
    when the server names none; ``parallel`` the number of concurrent streams for
    ``init`` (default: one per base URL); ``sleep`` waits between tries (``time.sleep``;
    a test passes a recorder). Connections are kept alive for reuse until ``close``.
    """

    def __init__(self, base_url: str | Sequence[str], token: str | None = None, *,
                 timeout: float = 300.0, retries: int = 4, parallel: int | None = None,
                 backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("give at least one base URL")
        if parallel is not None and parallel < 1:
            raise ValueError("parallel must be at least 1")
        self.parallel = parallel or len(urls)
        # Per server: its share of the streams, plus the report asked for on the side.
        per_server = -(-self.parallel // len(urls)) + 1
        self._transport = Transport([Endpoint.parse(u) for u in urls], token=token,
                                    timeout_s=timeout, retries=retries, backoff_s=backoff,
                                    sleep=sleep, connections=per_server)

    @property
    def transport(self) -> Transport:
        """The HTTP transport (servers, token, retries, pool), for code that reads bodies
        itself, such as ``weightinit.torch``'s sharded loading."""
        return self._transport

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the kept-alive connections (a later request opens new ones)."""
        self._transport.close()

    def plan(self, spec: SpecLike) -> dict[str, Any]:
        """``POST /v1/plan``: every tensor resolved (fans, expected statistics), instantly."""
        return self._transport.json("POST", "/v1/plan", _payload(spec))

    def report(self, spec: SpecLike) -> dict[str, Any]:
        """``POST /v1/report``: the plan plus observed statistics and ``file_sha256``."""
        return self._transport.json("POST", "/v1/report", _payload(spec))

    def initializers(self) -> dict[str, Any]:
        """``GET /v1/initializers``: the catalogue with parameters and formulas."""
        return self._transport.json("GET", "/v1/initializers")

    @overload
    def init(self, spec: SpecLike, path: None = None, *, progress: bool = False,
             with_report: Literal[False] = False, verify_sha256: bool = False,
             sha256: bool = True) -> Arrays: ...

    @overload
    def init(self, spec: SpecLike, path: str | os.PathLike[str], *, progress: bool = False,
             with_report: Literal[False] = False, verify_sha256: bool = False,
             sha256: bool = True) -> DownloadedFile: ...

    @overload
    def init(self, spec: SpecLike, path: str | os.PathLike[str], *, progress: bool = False,
             with_report: Literal[True], verify_sha256: bool = False,
             sha256: bool = True) -> dict[str, Any]: ...

    def init(self, spec: SpecLike, path: str | os.PathLike[str] | None = None, *,
             progress: bool = False, with_report: bool = False,
             verify_sha256: bool = False, sha256: bool = True,
             ) -> DownloadedFile | Arrays | dict[str, Any]:
        """Fetch the weights. With ``path``: write the file there atomically and return
        the report (``with_report``) or a ``DownloadedFile``. Without: return
        ``{name: numpy array}`` (bfloat16 as ``ml_dtypes.bfloat16``).
        ``verify_sha256`` checks the bytes against the server's report and raises
        ``ChecksumError`` (leaving no file) when they differ. ``sha256=False`` skips
        hashing a file (``file_sha256`` is then None): sha256 runs at about 2 GB/s per
        core, so it can be what limits a download."""
        if path is None and with_report:
            raise ValueError("for arrays and the report together use init_with_report")
        fetch = _Fetch(_payload(spec), path, progress, with_report, verify_sha256,
                       sha256 and path is not None)
        result, report = self._init(fetch)
        return (report or {}) if with_report else result

    def init_tensors(self, spec: SpecLike, *, progress: bool = False) -> dict[str, Any]:
        """Fetch the weights as ``{name: torch tensor}`` over one buffer (no copy), for
        ``weightinit.torch.load_weights``: what ``init`` returns as numpy arrays, without
        importing ml_dtypes for bfloat16. Needs torch."""
        fetch = _Fetch(_payload(spec), None, progress, False, False, False, tensors=True)
        result, _ = self._init(fetch)
        assert isinstance(result, dict)
        return result

    @overload
    def init_with_report(self, spec: SpecLike, path: None = None, *, progress: bool = False,
                         verify_sha256: bool = False) -> tuple[Arrays, dict[str, Any]]: ...

    @overload
    def init_with_report(self, spec: SpecLike, path: str | os.PathLike[str], *,
                         progress: bool = False, verify_sha256: bool = False,
                         ) -> tuple[DownloadedFile, dict[str, Any]]: ...

    def init_with_report(self, spec: SpecLike, path: str | os.PathLike[str] | None = None,
                         *, progress: bool = False, verify_sha256: bool = False,
                         ) -> tuple[DownloadedFile | Arrays, dict[str, Any]]:
        """The weights and the report in one pass (``multipart/mixed``): ``(arrays or
        DownloadedFile, report)``. The file is streamed to ``path``, never held in
        memory."""
        fetch = _Fetch(_payload(spec), path, progress, True, verify_sha256, path is not None)
        result, report = self._init(fetch)
        return result, report or {}

    # -- internals -------------------------------------------------------------------------

    def _init(self, fetch: _Fetch,
              ) -> tuple[DownloadedFile | Arrays, dict[str, Any] | None]:
        try:
            # A huggingface spec's local plan would start a tracing worker here (torch
            # and transformers, seconds and 400 MB): it is fetched in one stream.
            if self.parallel > 1 and "huggingface" not in fetch.payload:
                plan_document = self.plan(fetch.payload)
                groups = balance(plan_document["tensors"], self.parallel, fetch.payload)
                if len(groups) > 1:
                    try:
                        header, plan = full_header(fetch.payload, plan_document)
                    except ProtocolError as error:
                        warnings.warn(f"parallel fetch unavailable ({error}); fetching in "
                                      "one stream", stacklevel=3)
                    else:
                        return self._init_parallel(fetch, plan_document, groups, header,
                                                   len(header) + plan.total_bytes)
            return self._init_single(fetch)
        except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
            # The answer had started: not retried, since part of it may be in hand.
            raise WeightinitError(f"transfer interrupted: {error!r}",
                                  code="interrupted") from error

    def _side_report(self, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        """Ask for the report on the side (another replica when there is one)."""
        pool = ThreadPoolExecutor(1, thread_name_prefix="weightinit-report")
        future = pool.submit(self._transport.json, "POST", "/v1/report", payload, start=1)
        pool.shutdown(wait=False)
        return future

    def _init_single(self, fetch: _Fetch,
                     ) -> tuple[DownloadedFile | Arrays, dict[str, Any] | None]:
        side_report = (self._side_report(fetch.payload)
                       if fetch.verify and not fetch.with_report else None)
        accept = "multipart/mixed" if fetch.with_report else "application/octet-stream"
        sink: Sink | None = None
        try:
            with self._transport.open("POST", "/v1/init", fetch.payload,
                                      accept=accept) as response:
                answer = InitBody(response)
                sink, layout, digest = _receive(answer.file, answer.content_length, fetch)
                report = answer.report()
            if fetch.with_report and report is None:  # a server that ignored Accept
                report = self.report(fetch.payload)
            if fetch.verify:
                _check_sha256(digest, report if side_report is None else side_report.result())
            return _finish(sink, layout, digest, fetch), report
        except BaseException:
            _discard(sink)
            raise

    def _init_parallel(self, fetch: _Fetch, plan_document: dict[str, Any],
                       groups: list[list[str | dict[str, Any]]], header: bytes, total: int,
                       ) -> tuple[DownloadedFile | Arrays, dict[str, Any] | None]:
        side_report = self._side_report(fetch.payload) if fetch.verify else None
        path = fetch.path
        sink = FileSink(path, total) if path is not None else MemorySink(total)
        bar = _Progress(fetch.progress, total, fetch.label)
        try:
            group_fetch = GroupFetch(self._transport, fetch.payload, header,
                                     file_offsets(header), with_report=fetch.with_report)
            reports = group_fetch.run(groups, sink, bar)
            # sha256 of the assembled file, in one pass at the end: the groups arrive in
            # no particular order.
            digest = sink.sha256() if fetch.hashed or fetch.with_report else None
            report = (merged_report(plan_document, reports, digest or "")
                      if fetch.with_report else None)
            if side_report is not None:
                _check_sha256(digest, side_report.result())
            return _finish(sink, parse_header(header), digest, fetch), report
        except BaseException:
            _discard(sink)
            raise
        finally:
            bar.close()


@dataclass(frozen=True)
class _Fetch:
    """One ``init``: the body, where it goes, and what to check and report on the way."""

    payload: dict[str, Any]
    path: str | os.PathLike[str] | None
    progress: bool
    with_report: bool
    verify: bool
    sha256: bool
    tensors: bool = False  # torch tensors instead of numpy arrays

    @property
    def hashed(self) -> bool:
        return self.sha256 or self.verify

    @property
    def label(self) -> str:
        return Path(self.path).name if self.path is not None else "weights"


def _receive(source: Source, length: int | None, fetch: _Fetch,
             ) -> tuple[Sink, Layout, str | None]:
    """Read one safetensors body from ``source`` into a file or memory (uncommitted), with
    its sha256 when wanted."""
    layout = read_layout(source)
    if length is not None and length != layout.file_bytes:
        raise ProtocolError(f"Content-Length {length} but the header describes "
                            f"{layout.file_bytes} bytes")
    path = fetch.path
    sink = FileSink(path, layout.file_bytes) if path is not None else MemorySink(
        layout.file_bytes)
    bar = _Progress(fetch.progress, length or layout.file_bytes, fetch.label)
    follower = HashFollower(sink) if fetch.hashed else None
    try:
        with sink.region(0, len(layout.header)) as view:
            view[:] = layout.header
        bar.update(len(layout.header))
        if follower is not None:
            follower.advance(len(layout.header))
        copy_into(source, sink, len(layout.header), layout.data_bytes, progress=bar,
                  follower=follower)
        expect_end(source)
        digest = follower.finish() if follower is not None else None
    except BaseException:
        if follower is not None:
            follower.cancel()
        _discard(sink)
        raise
    finally:
        bar.close()
    return sink, layout, digest


def _check_sha256(digest: str | None, report: dict[str, Any]) -> None:
    expected = report.get("file_sha256")
    if digest != expected:
        raise ChecksumError(
            f"received bytes hash to {digest}, the server reports {expected}",
            code="sha256_mismatch",
        )


def _finish(sink: Sink, layout: Layout, digest: str | None, fetch: _Fetch,
            ) -> DownloadedFile | Arrays:
    if isinstance(sink, FileSink):
        return DownloadedFile(sink.commit(), layout.file_bytes, digest)
    sink.close()
    if fetch.tensors:
        return tensors_from_buffer(sink.buffer, layout)
    return arrays_from_buffer(sink.buffer, layout)


def _discard(sink: Sink | None) -> None:
    """After a failure: no file left behind, no helper thread left running."""
    if isinstance(sink, FileSink):
        sink.abort()
    elif sink is not None:
        sink.close()

