"""The client's HTTP layer on urllib3: a pool of kept-alive connections per server,
urllib3's ``Retry`` for what is safe to retry, and error bodies decoded into
``WeightinitError``.

Every request of the API is idempotent (the same spec gives the same bytes), so a request
is retried when the server answers 503 or 429 (after its ``Retry-After``, else urllib3's
exponential backoff with jitter) or when no answer started (refused, reset, timed out);
never once a body byte was handed to the caller, so nothing is written twice. With several
base URLs each retry goes to the next replica, which is why the loop over tries is here
and urllib3's ``Retry`` decides whether and how long to wait.

Bodies are read with ``http.client``'s ``readinto`` straight into the caller's memory (the
destination, not a temporary): see ``KeptBodyConnection`` for how urllib3 gives it up.
Large reads of a plain (not TLS) socket on Linux go to the socket itself with
``MSG_WAITALL``: one system call fills megabytes without the GIL, where ``http.client``
returns to Python after each ``recv`` (what has arrived so far) and, in a process busy
with other Python work (building the model being downloaded), waits for the GIL each
time (``Response.readinto``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, InvalidHeader, MaxRetryError
from urllib3.util import Retry, Timeout

# Reads at least this large go to the socket with MSG_WAITALL (Linux, plain sockets).
DIRECT_READ_BYTES = 1 << 20
_DIRECT_READS = sys.platform.startswith("linux") and hasattr(socket, "MSG_WAITALL")
RETRY_STATUSES = frozenset({429, 503})
MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 300
# Every route answers the same bytes for the same request: POST is as safe to repeat as GET.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "POST"})


class WeightinitError(Exception):
    """A request the server refused (or could not be reached): ``status`` (HTTP status,
    ``None`` when no answer came), ``code`` (the server's error code) and ``details``
    (the server's list of ``{"loc": [...], "msg": ...}``), as the server sent them."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or []
        self.body = body

    @property
    def loc(self) -> list[str | int] | None:
        """The request field the first detail names (e.g. ``["layers", 0, "in_features"]``)."""
        for detail in self.details:
            if isinstance(detail, dict) and "loc" in detail:
                return list(detail["loc"])
        return None

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}" if self.status is not None else "no answer"
        code = f" {self.code}" if self.code else ""
        where = ".".join(str(part) for part in self.loc) if self.loc else ""
        at = f" (at {where})" if where and where not in self.message else ""
        return f"{prefix}{code}: {self.message}{at}"


class ChecksumError(WeightinitError):
    """The bytes received do not hash to the ``file_sha256`` the server reports."""


class ProtocolError(WeightinitError):
    """The answer is not what the protocol promises (a body cut short or too long, a
    malformed safetensors header or multipart body): a broken transfer or proxy."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="bad_response")


def error_from_response(status: int, reason: str, raw: bytes) -> WeightinitError:
    """Decode an error body; tolerant of the shapes servers use (ours, FastAPI's, plain)."""
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")[:2000]
    payload = body.get("error", body) if isinstance(body, dict) else body
    code = message = None
    details: list[dict[str, Any]] = []
    if isinstance(payload, dict):
        code = payload.get("code")
        message = payload.get("message") or payload.get("msg")
        listed = payload.get("details", payload.get("detail"))
        if isinstance(listed, list):
            details = [d for d in listed if isinstance(d, dict)]
        elif isinstance(listed, str) and message is None:
            message = listed
    if message is None and details:
        message = "; ".join(str(d.get("msg", d)) for d in details)
    if message is None:
        message = body if isinstance(body, str) and body else reason
    return WeightinitError(str(message), status=status, code=code, details=details, body=body)


class _KeepsBody:
    """Mixin for urllib3's connections that keeps the ``http.client`` response it parsed.

    urllib3's ``HTTPResponse.readinto`` reads into a new ``bytes`` and copies that into
    the caller's buffer, and the ``http.client`` response it wraps, whose ``readinto``
    fills the caller's buffer straight from the socket, is private to it (``_fp``).
    ``http.client.HTTPConnection.getresponse`` builds that response by calling the
    connection's ``response_class``; this one also records it as ``body``, so the client
    reads large bodies with one copy, from the socket into their destination.
    """

    body: http.client.HTTPResponse | None = None

    def response_class(self, sock: Any, *args: Any, **kwargs: Any) -> http.client.HTTPResponse:
        self.body = http.client.HTTPResponse(sock, *args, **kwargs)
        return self.body


# http.client types ``response_class`` as a class; a method that builds one stands in.
class KeptBodyConnection(_KeepsBody, HTTPConnection):  # type: ignore[misc]
    """urllib3's HTTP connection, keeping its ``http.client`` response as ``body``."""


class KeptBodyHTTPSConnection(_KeepsBody, HTTPSConnection):  # type: ignore[misc]
    """urllib3's HTTPS connection, keeping its ``http.client`` response as ``body``."""


class _Pool(HTTPConnectionPool):
    ConnectionCls = KeptBodyConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = KeptBodyHTTPSConnection


class Pools(urllib3.PoolManager):
    """urllib3's ``PoolManager`` whose connections keep their ``http.client`` response."""

    def __init__(self, **pool_options: Any) -> None:
        super().__init__(**pool_options)
        self.pool_classes_by_scheme = {"http": _Pool, "https": _HTTPSPool}


@dataclass(frozen=True)
class Endpoint:
    """One server: scheme, host, port and path prefix of a base URL."""

    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) base URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal
        return f"{self.scheme}://{host}:{self.port}{self.prefix}{path}"

    def __str__(self) -> str:
        return self.url("")


class Response:
    """A started 2xx response: status, headers and ``readinto`` straight from the socket.

    ``close`` hands the connection back to the pool when the body was read to its end and
    drops it otherwise; ``interrupt`` (from another thread) ends a blocked read at once.
    """

    def __init__(self, response: urllib3.BaseHTTPResponse, endpoint: Endpoint) -> None:
        connection = response.connection
        if not isinstance(connection, _KeepsBody) or connection.body is None:
            raise TypeError("a response from a connection of Pools is needed")
        self._response: urllib3.BaseHTTPResponse = response
        self._body: http.client.HTTPResponse = connection.body
        self._lock: threading.Lock = threading.Lock()
        self._broken = False  # a read failed or was interrupted: never reuse the connection
        self.endpoint = endpoint
        self.status = response.status

    def header(self, name: str) -> str | None:
        return self._response.headers.get(name)

    @property
    def content_length(self) -> int | None:
        value = self.header("Content-Length")
        return int(value) if value and value.isdigit() else None

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` as far as the body allows; 0 at the end. A body cut short ends
        early (0 before its length, as ``http.client``'s reads do): the caller, who knows
        the length, says so."""
        try:
            sock = self._direct_socket() if len(buffer) >= DIRECT_READ_BYTES else None
            if sock is None:
                return self._body.readinto(buffer)
            return self._read_direct(sock, buffer)
        except BaseException:
            self._broken = True
            raise

    def _direct_socket(self) -> socket.socket | None:
        """The connection's socket when a large read may bypass ``http.client``: a plain
        socket on Linux, a body of known length still open."""
        body = self._body
        if not _DIRECT_READS or body.fp is None or body.chunked or not body.length:
            return None
        sock = getattr(self._response.connection, "sock", None)
        if type(sock) is not socket.socket or sock.gettimeout() == 0:  # non-blocking: as is
            return None
        return sock

    def _read_direct(self, sock: socket.socket, buffer: memoryview) -> int:
        """``readinto`` in one ``MSG_WAITALL`` system call after what ``http.client`` has
        buffered, keeping its count of the body's remaining bytes (``length``) exact."""
        body = self._body
        assert body.fp is not None and body.length is not None
        wanted = min(len(buffer), body.length)
        buffered = min(len(body.fp.peek()), wanted)  # peek reads only if nothing is buffered
        if buffered == 0:  # the peer closed early: http.client raises IncompleteRead
            return body.readinto(buffer)
        taken = body.readinto(buffer[:buffered])  # from http.client's buffer alone
        if taken < buffered or taken == wanted:
            return taken
        count = recv_all(sock, buffer[taken:wanted])
        body.length -= count
        if body.length == 0:
            body.read(0)  # the body is complete: http.client releases it as after a read
        return taken + count

    def read(self) -> bytes:
        """The rest of the body (for small answers such as JSON documents)."""
        try:
            return self._body.read()
        except BaseException:
            self._broken = True
            raise

    def interrupt(self) -> None:
        """End the reads of the thread that owns this response (safe from any thread)."""
        with self._lock, contextlib.suppress(ValueError, RuntimeError, OSError):
            self._broken = True
            self._response.shutdown()

    def close(self) -> None:
        with self._lock:
            if self._broken or not self._body.isclosed():  # not read to its end
                self._response.close()
            self._response.release_conn()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def recv_all(sock: socket.socket, view: memoryview) -> int:
    """Receive until ``view`` is full or the peer closes (then fewer bytes); blocking in
    the kernel with ``MSG_WAITALL`` and ``SO_RCVTIMEO`` set to the socket's timeout.
    ``TimeoutError`` when no byte came for that long; another thread's ``shutdown`` of
    the socket ends the wait."""
    timeout = sock.gettimeout()
    if timeout is not None:
        seconds = int(timeout)
        micros = max(int((timeout - seconds) * 1e6), 0 if seconds else 1)  # 0 0 is "never"
        sock.settimeout(None)  # a blocking descriptor: MSG_WAITALL then waits in the kernel
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                        struct.pack("ll", seconds, micros))
    done = 0
    try:
        while done < len(view):
            try:
                count = sock.recv_into(view[done:], 0, socket.MSG_WAITALL)
            except BlockingIOError:  # SO_RCVTIMEO passed without a byte
                raise TimeoutError(f"no body byte received for {timeout} s") from None
            if count == 0:
                break
            done += count
    finally:
        if timeout is not None:
            with contextlib.suppress(OSError):  # the socket may have been closed meanwhile
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
                sock.settimeout(timeout)
    return done


@dataclass
class Transport:
    """Sends requests to one of several equivalent servers, retrying what is safe to.

    ``connections`` is how many connections per server are kept alive for reuse (more
    may be open at once; the extra ones are closed after use). ``sleep`` waits between
    tries (a test passes a recorder).
    """

    endpoints: list[Endpoint]
    token: str | None = None
    timeout_s: float = 300.0
    retries: int = 4
    backoff_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    connections: int = 4
    _pools: Pools = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("give at least one base URL")
        self._pools = Pools(num_pools=max(10, len(self.endpoints)), maxsize=self.connections,
                            block=False, retries=False,
                            timeout=Timeout(connect=self.timeout_s, read=self.timeout_s))

    def retry_policy(self) -> Retry:
        """urllib3's ``Retry`` for one request: ``retries`` extra tries on 503/429 (after
        ``Retry-After``, at most 300 s) or on a failure before the answer started."""
        return Retry(total=self.retries, redirect=0, status_forcelist=RETRY_STATUSES,
                     allowed_methods=IDEMPOTENT_METHODS, backoff_factor=self.backoff_s,
                     backoff_max=MAX_BACKOFF_S, backoff_jitter=self.backoff_s,
                     respect_retry_after_header=True, retry_after_max=MAX_RETRY_AFTER_S,
                     raise_on_status=False)

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": accept,
            "Accept-Encoding": "identity",  # bodies are read raw, straight into place
            "User-Agent": "weightinit-client",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def open(self, method: str, path: str, payload: Any = None, *, accept: str = "*/*",
             start: int = 0) -> Response:
        """Send the request and return the started 2xx response (the caller reads and
        closes it). Raises ``WeightinitError`` for an error answer or when every try
        failed; ``start`` picks the first replica to ask."""
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers = self._headers(accept)
        retry = self.retry_policy()
        attempt = start
        while True:
            endpoint = self.endpoints[attempt % len(self.endpoints)]
            attempt += 1
            url = endpoint.url(path)
            answer: urllib3.BaseHTTPResponse | None = None
            cause: HTTPError | None = None
            try:
                answer = self._pools.urlopen(method, url, body=body, headers=headers,
                                             redirect=False, preload_content=False)
            except HTTPError as error:  # nothing was received
                cause = error
                failure = WeightinitError(f"{method} {endpoint}{path} failed: {error!r}",
                                          code="unreachable")
            else:
                if 200 <= answer.status < 300:
                    return Response(answer, endpoint)
                failure = error_from_response(answer.status, answer.reason or "",
                                              answer.data)
                answer.release_conn()
                if not retry.is_retry(method, answer.status):
                    raise failure
            try:
                retry = retry.increment(method, url, response=answer, error=cause)
            except (MaxRetryError, HTTPError):
                raise failure from cause
            self.sleep(self._delay(retry, answer))

    @staticmethod
    def _delay(retry: Retry, answer: urllib3.BaseHTTPResponse | None) -> float:
        """Seconds to wait before the next try: the server's ``Retry-After``, else
        urllib3's backoff for the tries so far."""
        if answer is not None:
            with contextlib.suppress(InvalidHeader):  # an unreadable one counts as none
                seconds = retry.get_retry_after(answer)
                if seconds is not None:
                    return seconds
        return retry.get_backoff_time()

    def json(self, method: str, path: str, payload: Any = None, *, start: int = 0) -> Any:
        """A request whose answer is JSON, read whole."""
        with self.open(method, path, payload, accept="application/json", start=start) as reply:
            return json.loads(reply.read())

    def close(self) -> None:
        """Close every kept-alive connection (a later request opens new ones)."""
        self._pools.clear()

