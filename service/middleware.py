"""The one pure-ASGI middleware around every request.

It does what every response needs, without buffering or wrapping the body stream (so
the zero-copy streaming of ``/v1/init`` is untouched): an ``X-Request-ID`` (the client's
if it is sane, else a new one), security headers, the request-body size limit (from
``Content-Length`` up front and while reading, for chunked bodies), ``Connection: close``
while draining, request metrics by route template and the access log line. Tokens and
request bodies are never logged.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from weightinit.service.capacity import Capacity
from weightinit.service.errors import BodyTooLarge, body_too_large
from weightinit.service.metrics import Metrics

access_log = logging.getLogger("weightinit.access")

_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:@/+=-]{1,128}$")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# The API serves no HTML; /docs does (Swagger UI loads its script from a CDN).
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_HTML_PATHS = ("/docs", "/redoc", "/ui")  # /ui sends its own CSP (service/diagnose.py)


def _is_html_path(path: str) -> bool:
    """``/docs``, ``/redoc``, ``/ui`` and what lies below them (not ``/uix``)."""
    return any(path == p or path.startswith(p + "/") for p in _HTML_PATHS)


class ServiceMiddleware:
    """Request IDs, security headers, body limit, draining, metrics, access log."""

    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, capacity: Capacity, max_body_bytes: int
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.capacity = capacity
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, content_length = _read_headers(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        outcome = {"status": 0, "bytes": 0}
        extra_headers = [(b"x-request-id", request_id.encode()), *_SECURITY_HEADERS]
        if not _is_html_path(scope["path"]):
            extra_headers.append(_API_CSP)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                headers = list(message.get("headers", ())) + extra_headers
                if self.capacity.draining:
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                outcome["bytes"] += len(message.get("body", b""))
            await send(message)

        limit = self.max_body_bytes
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            if content_length is not None and content_length > limit:
                await self._refuse_body(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive_limited, send_wrapper)
        except BaseException:
            if not outcome["status"]:
                outcome["status"] = 500
            raise
        finally:
            self._record(scope, outcome, started, request_id)

    async def _refuse_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        """413 without reading the body."""
        await body_too_large(self.max_body_bytes).response()(scope, receive, send)

    def _record(self, scope: Scope, outcome: dict[str, int], started: float,
                request_id: str) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        # Route templates keep the label set small; a matched plain Starlette route
        # (/docs, /openapi.json) has a fixed path; anything unmatched is one label.
        template = getattr(route, "path", None) or (
            scope["path"] if "endpoint" in scope else "unmatched")
        status = outcome["status"]
        self.metrics.requests.labels(template, scope["method"], str(status)).inc()
        self.metrics.request_seconds.labels(template).observe(elapsed)
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client") or ("-", 0)
            principal = scope.get("state", {}).get("principal") or "-"
            access_log.info(
                '%s "%s %s" %d %d %.1fms request_id=%s principal=%s',
                client[0], scope["method"], scope["path"], status, outcome["bytes"],
                elapsed * 1e3, request_id, principal,
            )


def _read_headers(scope: Scope) -> tuple[str, int | None]:
    """The request ID to use and the declared body length, from the raw headers."""
    request_id = None
    content_length = None
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _SANE_REQUEST_ID.match(value):
            request_id = value.decode()
        elif name == b"content-length" and value.isdigit():
            content_length = int(value)
    return request_id or uuid.uuid4().hex, content_length
