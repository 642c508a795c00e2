"""The ``/v1/init`` response: a safetensors file streamed chunk by chunk, straight to ASGI.

The header comes from the plan, so ``Content-Length`` is exact before any value exists;
then each chunk of ``weightinit.core.generate.ChunkStream`` is sent as a memoryview of its array
(no copy) as soon as the generator's thread pool has it, while at most ``window`` chunks
are generated ahead: memory per stream is bounded whatever the client's speed, because
``send`` waits while the socket is backed up. A task watches ``receive`` for the
client's disconnect (uvicorn's ``send`` does not raise after one), and the stream is
closed in a ``finally``, so an abandoned download stops generating within a chunk or so.

``Accept: multipart/mixed`` wraps the same bytes as part 1 (``application/octet-stream``,
with its own ``Content-Length``) and appends part 2, the JSON report with the observed
statistics and ``file_sha256``; the boundary is random per response.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from weightinit.core import ChunkStream, Observer, Plan, Spec, file_size, report_document
from weightinit.core.generate import Chunk
from weightinit.core.safetensors_io.writer import package_version
from weightinit.core.spec import canonical_json
from weightinit.service.server import strict_json
from weightinit.service.server.capacity import StreamSlot
from weightinit.service.server.metrics import Metrics
from weightinit.service.server.protocol import SendWatch

# Chunks smaller than this are hashed on the event loop (a thread hop costs more); larger
# ones on the hashing pool, overlapped with sending (sha256 runs at ~1 GB/s per core).
INLINE_HASH_BYTES = 256 << 10
# Consecutive small buffers (tiny tensors, the header) are joined up to this size so a
# model of many small tensors does not cost a syscall each; large ones go as they are.
COALESCE_BYTES = 256 << 10

_HASH_EXECUTOR: ThreadPoolExecutor | None = None


def hash_executor() -> ThreadPoolExecutor:
    """Threads that hash chunks for reports (hashlib releases the GIL on big buffers)."""
    global _HASH_EXECUTOR
    if _HASH_EXECUTOR is None:
        _HASH_EXECUTOR = ThreadPoolExecutor(os.cpu_count() or 1,
                                            thread_name_prefix="weightinit-hash")
    return _HASH_EXECUTOR


def request_etag(spec: Spec) -> str:
    """Strong ETag of the file a spec produces: package and algorithm version plus the
    canonical spec (defaults filled in, keys sorted) including ``select`` and ``shard``."""
    canonical = canonical_json(spec.model_dump(mode="json", exclude_none=True))
    digest = hashlib.sha256()
    for part in (b"weightinit", package_version().encode(), spec.algorithm.encode(), canonical):
        digest.update(part + b"\0")
    return f'"{digest.hexdigest()}"'


def multipart_etag(file_etag: str) -> str:
    """Weak ETag of the multipart form: same content, but the boundary differs each time."""
    return f'W/"{file_etag.strip(chr(34))}-multipart"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 ``If-None-Match``: ``*`` or any listed tag equal under weak comparison."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


class StreamRun:
    """One generation for a client: counts it, watches for disconnect, observes chunks.

    Used by the streamed file and by ``/v1/report``; ``finish()`` must run (in a
    ``finally``) to close the generator and give the capacity slot back. A stream made
    ``with_stats`` is for a report, so its chunks are also observed (hashes, moments).
    """

    def __init__(
        self, stream: ChunkStream, slot: StreamSlot, metrics: Metrics, endpoint: str,
        send_watch: SendWatch | None = None,
    ) -> None:
        self.stream = stream
        self.send_watch = send_watch
        self.slot = slot
        self.metrics = metrics
        self.endpoint = endpoint
        self.observer = Observer() if stream.with_stats else None
        self.disconnected = False
        self.completed = False
        self._watcher: asyncio.Task[None] | None = None
        self._started = time.perf_counter()
        metrics.streams_started.labels(endpoint).inc()

    def watch(self, receive: Receive) -> None:
        """Notice the client going away (call after the request body has been read)."""

        async def _watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected = True

        self._watcher = asyncio.ensure_future(_watch())

    async def chunks(self) -> AsyncIterator[Chunk]:
        """The chunks in file order, observed in order; stops early on disconnect."""
        loop = asyncio.get_running_loop()
        observer, metrics = self.observer, self.metrics
        pending_hash: asyncio.Future[None] | None = None
        async for chunk in self.stream:
            if self.disconnected:
                return
            metrics.chunks_generated.inc()
            metrics.parameters_streamed.inc(chunk.data.size)
            if observer is not None:
                if pending_hash is not None:
                    await pending_hash  # keeps the hashes in file order
                    pending_hash = None
                if chunk.data.nbytes >= INLINE_HASH_BYTES:
                    pending_hash = loop.run_in_executor(hash_executor(), observer.chunk, chunk)
                else:
                    observer.chunk(chunk)
            yield chunk
        if pending_hash is not None:
            await pending_hash

    def finish(self) -> None:
        """Stop generating, release the slot and record how the stream ended."""
        self.stream.close()
        if self._watcher is not None:
            self._watcher.cancel()
        self.slot.release()
        metrics = self.metrics
        if self.completed:
            metrics.streams_completed.labels(self.endpoint).inc()
        else:
            metrics.streams_aborted.labels(self.endpoint).inc()
            if self.send_watch is not None and self.send_watch.timed_out:
                metrics.streams_stalled.labels(self.endpoint).inc()
        metrics.generation_seconds.labels(self.endpoint).observe(
            time.perf_counter() - self._started
        )


class SafetensorsResponse(Response):
    """ASGI response streaming a plan's file (or the multipart file + report)."""

    def __init__(
        self, plan: Plan, header: bytes, run: StreamRun, headers: dict[str, str],
        multipart: bool = False, report: bytes | None = None,
    ) -> None:
        self.plan = plan
        self.header = header
        self.run = run
        self.report = report  # multipart with a report made beforehand: Content-Length
        self.status_code = 200
        self.background = None
        self.boundary = secrets.token_hex(16) if multipart else None
        size = file_size(plan, header)
        self.file_size = size
        if self.boundary is None:
            self.media_type = "application/octet-stream"
            headers = {**headers, "content-length": str(size)}
        else:
            self.media_type = f"multipart/mixed; boundary={self.boundary}"
            if report is not None:
                length = len(self._part_preamble()) + size + len(self._report_part(report))
                headers = {**headers, "content-length": str(length)}
        self.init_headers(headers)

    def _part_preamble(self) -> bytes:
        return (
            f"--{self.boundary}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {self.file_size}\r\n"
            f'Content-Disposition: attachment; filename="model.safetensors"\r\n\r\n'
        ).encode()

    def _report_part(self, report: bytes) -> bytes:
        return (
            f"\r\n--{self.boundary}\r\nContent-Type: application/json\r\n\r\n".encode()
            + report + f"\r\n--{self.boundary}--\r\n".encode()
        )

    def _observed_report(self) -> bytes:
        if self.report is not None:
            return self.report
        assert self.run.observer is not None  # multipart streams are observed
        return strict_json.dumps(report_document(self.plan, self.run.observer))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        run = self.run
        try:
            run.watch(receive)
            await send({"type": "http.response.start", "status": 200,
                        "headers": self.raw_headers})
            if run.observer is not None:
                run.observer.header(self.header)
            small: list[bytes | memoryview] = [self.header]
            if self.boundary is not None:
                small.insert(0, self._part_preamble())
            small_bytes = sum(len(b) for b in small)
            async for chunk in run.chunks():
                buffer = chunk.buffer
                if small and small_bytes + len(buffer) > COALESCE_BYTES:
                    await _send_body(send, b"".join(small))
                    small, small_bytes = [], 0
                if len(buffer) >= COALESCE_BYTES:
                    await _send_body(send, buffer)
                else:
                    small.append(buffer)
                    small_bytes += len(buffer)
                run.metrics.bytes_streamed.inc(len(buffer))
                if run.disconnected:
                    return
            if run.disconnected:
                return
            if self.boundary is not None:
                small.append(self._report_part(self._observed_report()))
            await _send_body(send, b"".join(small), more_body=False)
            run.completed = True
        finally:
            run.finish()


async def _send_body(send: Send, body: Any, more_body: bool = True) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": more_body})


async def report_while_connected(plan: Plan, header: bytes, run: StreamRun,
                                 receive: Receive) -> dict[str, Any] | None:
    """Generate every chunk without sending it; the report, or None if the client left."""
    assert run.observer is not None
    try:
        run.watch(receive)
        run.observer.header(header)
        async for _ in run.chunks():
            pass
        if run.disconnected:
            return None
        run.completed = True
        return report_document(plan, run.observer)
    finally:
        run.finish()
