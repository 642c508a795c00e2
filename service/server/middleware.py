"""The one pure-ASGI middleware around every request.

It does what every response needs, without buffering or wrapping the body stream (so
the zero-copy streaming of ``/v1/init`` is untouched): an ``X-Request-ID`` (the client's
if it is sane, else a new one), security headers, the ``Host`` check (400 for a name not
in ``allowed_hosts``: a DNS-rebinding page sends its own name), ``HEAD`` answered as
``GET`` without the body, the request-body size limit (from ``Content-Length`` up front
and while reading, for chunked bodies), ``Connection: close`` while draining, request
metrics by route template and the access log line. An unexpected exception before the
response started is answered as a JSON 500 with the request ID and headers, and the
connection stays usable. Tokens and request bodies are never logged.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from weightinit.service.server.capacity import Capacity
from weightinit.service.server.errors import BodyTooLarge, body_too_large, error_response
from weightinit.service.server.metrics import Metrics

access_log = logging.getLogger("weightinit.access")
error_log = logging.getLogger("weightinit.error")

_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:@/+=-]{1,128}$")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# The API serves no HTML; the pages (/ui, /docs, /redoc) send their own CSP.
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_HTML_PATHS = ("/docs", "/redoc", "/ui")
# Probes and scrapers address a pod by its IP: these answer whatever the Host.
_ANY_HOST_PATHS = ("/healthz", "/readyz", "/metrics")


def _is_html_path(path: str) -> bool:
    """``/docs``, ``/redoc``, ``/ui`` and what lies below them (not ``/uix``)."""
    return any(path == p or path.startswith(p + "/") for p in _HTML_PATHS)


class ServiceMiddleware:
    """Request IDs, security headers, body limit, draining, metrics, access log."""

    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, capacity: Capacity, max_body_bytes: int,
        allowed_hosts: list[str] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.capacity = capacity
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts = allowed_hosts or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, content_length, host = _read_headers(scope)
        if scope["method"] == "HEAD":  # routed as GET; the server sends no body for HEAD
            scope = {**scope, "method": "GET"}
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
            if not self._host_allowed(host, scope["path"]):
                await error_response(400, "invalid_host", f"Host {host!r} is not served "
                                     "here (WEIGHTINIT_ALLOWED_HOSTS)", [
                                         {"loc": [], "msg": "Host header not allowed"}],
                                     {"connection": "close"})(scope, receive, send_wrapper)
            elif content_length is not None and content_length > limit:
                await self._refuse_body(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive_limited, send_wrapper)
        except Exception:
            if outcome["status"]:
                raise  # mid-response: nothing to answer with; the server closes the socket
            error_log.exception("unexpected error, request_id=%s", request_id)
            await error_response(500, "internal_error", "internal server error (the log "
                                 f"has it under request ID {request_id})"
                                 )(scope, receive, send_wrapper)
        except BaseException:
            if not outcome["status"]:
                outcome["status"] = 500
            raise
        finally:
            self._record(scope, outcome, started, request_id)

    def _host_allowed(self, host: str | None, path: str) -> bool:
        if not self.allowed_hosts or path in _ANY_HOST_PATHS:
            return True
        if host is None:
            return False
        name = _host_name(host)
        return any(name == allowed or (allowed.startswith("*.") and name.endswith(allowed[1:]))
                   for allowed in self.allowed_hosts)

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


def _read_headers(scope: Scope) -> tuple[str, int | None, str | None]:
    """The request ID to use, the declared body length and the Host, from the raw headers."""
    request_id = None
    content_length = None
    host = None
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _SANE_REQUEST_ID.match(value):
            request_id = value.decode()
        elif name == b"content-length" and value.isdigit():
            content_length = int(value)
        elif name == b"host":
            host = value.decode("latin-1")
    return request_id or uuid.uuid4().hex, content_length, host


def _host_name(host: str) -> str:
    """The name of a Host header, lower case, without its port (``[::1]:80`` -> ``[::1]``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
