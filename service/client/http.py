"""The client's HTTP layer: ``http.client`` connections, retries, and error decoding.

Why ``http.client`` and not httpx or urllib3: reading a 1 GiB body from a local uvicorn
into a reused buffer, ``HTTPResponse.readinto`` ran at 3.8-5.0 GB/s here, urllib3's
``readinto`` (which allocates and copies each read) at 3.3-5.1 GB/s and httpx's streaming
read at 0.6-0.9 GB/s (``benchmarks/client_throughput.py``). ``http.client`` reads straight
into the caller's memory (the destination, not a temporary), needs no dependency, and a
connection per request keeps threads from sharing anything.

Retries: a request is retried, with exponential backoff, when the server answers 503 or
429 (waiting for ``Retry-After`` when it says so) or when the connection fails before the
response starts; never once a body byte was handed to the caller, so nothing is written
twice. With several base URLs each retry goes to the next replica.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RETRY_STATUSES = frozenset({429, 503})
MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 300.0

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted, http.client.RemoteDisconnected
    http.client.BadStatusLine,
    socket.timeout,
    socket.gaierror,
    TimeoutError,
)


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

    def connect(self, timeout_s: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout_s, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.prefix}"


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Response:
    """A started response: status, headers and ``readinto``; closes its connection."""

    def __init__(self, connection: http.client.HTTPConnection,
                 response: http.client.HTTPResponse, endpoint: Endpoint) -> None:
        self._connection = connection
        self._response = response
        self.endpoint = endpoint
        self.status = response.status

    def header(self, name: str) -> str | None:
        return self._response.getheader(name)

    @property
    def content_length(self) -> int | None:
        value = self.header("Content-Length")
        return int(value) if value and value.isdigit() else None

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` as far as the body allows; 0 at the end. A body cut short raises
        ``http.client.IncompleteRead``."""
        return self._response.readinto(buffer)

    def read(self) -> bytes:
        return self._response.read()

    def close(self) -> None:
        self._response.close()
        self._connection.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Transport:
    """Sends requests to one of several equivalent servers, retrying what is safe to."""

    endpoints: list[Endpoint]
    token: str | None = None
    timeout_s: float = 300.0
    retries: int = 4
    backoff_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def _headers(self, body: bytes, accept: str) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "Accept": accept,
            "User-Agent": "weightinit-client",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        # Full jitter: replicas that all refused at once do not all come back at once.
        return random.uniform(0, min(MAX_BACKOFF_S, self.backoff_s * 2**attempt))

    def open(self, method: str, path: str, payload: Any = None, *, accept: str = "*/*",
             start: int = 0) -> Response:
        """Send the request and return the started 2xx response (the caller reads and
        closes it). Raises ``WeightinitError`` for an error answer or when every try
        failed; ``start`` picks the first replica to ask."""
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers = self._headers(body, accept)
        last_error = WeightinitError("no attempt made", code="unreachable")
        for attempt in range(self.retries + 1):
            endpoint = self.endpoints[(start + attempt) % len(self.endpoints)]
            connection = endpoint.connect(self.timeout_s)
            try:
                connection.request(method, endpoint.prefix + path, body=body, headers=headers)
                response = connection.getresponse()
            except _CONNECTION_ERRORS as error:
                connection.close()
                last_error = WeightinitError(
                    f"{method} {endpoint}{path} failed: {error!r}", code="unreachable"
                )
                last_error.__cause__ = error
                retry_after = None
            else:
                if 200 <= response.status < 300:
                    return Response(connection, response, endpoint)
                raw = response.read()
                connection.close()
                last_error = error_from_response(response.status, response.reason, raw)
                if response.status not in RETRY_STATUSES:
                    raise last_error
                retry_after = retry_after_seconds(response.getheader("Retry-After"))
            if attempt < self.retries:
                self.sleep(self._delay(attempt, retry_after))
        raise last_error

    def json(self, method: str, path: str, payload: Any = None, *, start: int = 0) -> Any:
        """A request whose answer is JSON, read whole."""
        with self.open(method, path, payload, accept="application/json", start=start) as reply:
            return json.loads(reply.read())
