"""uvicorn's HTTP protocol with what one client may hold bounded.

``GuardedHttpToolsProtocol`` is uvicorn's httptools protocol plus:

* a cap on a request's line and headers (``max_header_bytes``): over it the client gets
  431 and the connection closes, after at most that many bytes were parsed, so one
  client's headers cannot grow the heap or hold the event loop;
* timeouts: a connection with no request in progress closes after ``idle_timeout_s``
  (uvicorn's keep-alive timeout, now also for a new connection that sends nothing), a
  request's headers must arrive within ``header_timeout_s`` and its body within
  ``body_timeout_s`` (408, then close);
* a send watchdog: a response whose client takes no bytes off the socket for
  ``send_timeout_s`` while the server has more to send is aborted (the socket reset,
  its buffered bytes dropped); the app sees a disconnect, stops generating and frees
  its stream slot. The request's ``SendWatch`` (in ``scope["extensions"]``) records
  it, so the app can count such streams apart from clients that left;
* errors the protocol answers itself (400, 408, 431) in the service's JSON format.

The limits travel in ``ServiceConfig``, a ``uvicorn.Config`` (pickled to worker
processes with it).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

SEND_WATCH = "weightinit.send_watch"


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection bounds, from ``Settings``."""

    max_header_bytes: int = 64 * 1024
    idle_timeout_s: float = 5.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    send_timeout_s: float = 30.0


class ServiceConfig(uvicorn.Config):
    """A ``uvicorn.Config`` carrying the ``ConnectionLimits`` for the protocol."""

    def __init__(self, app: Any, *, connection_limits: ConnectionLimits, **kwargs: Any) -> None:
        self.connection_limits = connection_limits
        super().__init__(app, http=GuardedHttpToolsProtocol,
                         timeout_keep_alive=connection_limits.idle_timeout_s, **kwargs)


class SendWatch:
    """Whether the send watchdog cut this request's response off."""

    def __init__(self) -> None:
        self.timed_out = False


def error_bytes(status: int, code: str, message: str) -> bytes:
    """A complete HTTP response in the service's error format, closing the connection."""
    body = json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()
    head = (b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"cache-control: no-store\r\nx-content-type-options: nosniff\r\n"
            b"connection: close\r\n\r\n")
    return STATUS_LINE[status] + head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header caps, timeouts and a send watchdog."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: ConnectionLimits = getattr(config, "connection_limits", ConnectionLimits())
        self.reading_headers = True  # between requests, or inside a request's head
        self.header_bytes = 0
        self.deadline: asyncio.TimerHandle | None = None
        self.send_watch_handle: asyncio.TimerHandle | None = None
        self.send_progress_at = 0.0
        self.send_buffered = 0

    # Connection life -------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Nothing sent yet: the keep-alive timeout applies to a fresh connection too.
        self.arm(self.limits.idle_timeout_s, self.idle_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        self.stop_send_watch()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.reading_headers:
            super().data_received(data)
            return
        if self.header_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
            self.arm(self.limits.header_timeout_s, self.header_timed_out)
        room = self.limits.max_header_bytes - self.header_bytes
        head, rest = data[:room], data[room:]
        self.header_bytes += len(head)
        super().data_received(head)
        if not rest or self.transport.is_closing():
            return
        if self.reading_headers:  # the head is still incomplete past the cap
            self.refuse(431, "request_header_fields_too_large",
                        f"request line and headers over {self.limits.max_header_bytes} bytes")
            return
        self.data_received(rest)

    # Parser callbacks ------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reading_headers = True

    def on_headers_complete(self) -> None:
        self.reading_headers = False
        self.header_bytes = 0
        self.scope["extensions"] = {SEND_WATCH: SendWatch()}  # type: ignore[typeddict-unknown-key]
        super().on_headers_complete()
        self.arm(self.limits.body_timeout_s, self.body_timed_out)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_headers = True
        self.disarm()

    def on_response_complete(self) -> None:
        self.stop_send_watch()
        super().on_response_complete()

    # Timers ----------------------------------------------------------------------
    def arm(self, delay_s: float, callback: Any) -> None:
        self.disarm()
        self.deadline = self.loop.call_later(delay_s, callback)

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def idle_timed_out(self) -> None:
        self.deadline = None
        if self.header_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()

    def header_timed_out(self) -> None:
        self.deadline = None
        self.refuse(408, "request_timeout",
                    f"request headers not received within {self.limits.header_timeout_s:g} s")

    def body_timed_out(self) -> None:
        self.deadline = None
        self.refuse(408, "request_timeout",
                    f"request body not received within {self.limits.body_timeout_s:g} s")

    def refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` unless a response has started, then close the connection."""
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(error_bytes(status, code, message))
        if cycle is not None and not cycle.response_complete:
            # As connection_lost will: the app reads a disconnect and writes nothing more.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self.refuse(400, "bad_request", msg)

    # Send watchdog ----------------------------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        self.send_progress_at = time.monotonic()
        self.send_buffered = self.transport.get_write_buffer_size()
        self.schedule_send_check()

    def resume_writing(self) -> None:
        self.stop_send_watch()
        super().resume_writing()

    def schedule_send_check(self) -> None:
        self.send_watch_handle = self.loop.call_later(
            self.limits.send_timeout_s / 4, self.check_send_progress)

    def stop_send_watch(self) -> None:
        if self.send_watch_handle is not None:
            self.send_watch_handle.cancel()
            self.send_watch_handle = None

    def check_send_progress(self) -> None:
        """Abort when the client has taken nothing off the socket for the timeout."""
        self.send_watch_handle = None
        if self.transport.is_closing():
            return
        buffered = self.transport.get_write_buffer_size()
        now = time.monotonic()
        if buffered < self.send_buffered:
            self.send_buffered, self.send_progress_at = buffered, now
        elif now - self.send_progress_at >= self.limits.send_timeout_s:
            if self.cycle is not None:
                watch = self.cycle.scope.get("extensions", {}).get(SEND_WATCH)
                if isinstance(watch, SendWatch):
                    watch.timed_out = True
            self.logger.info("client took no bytes for %g s: response aborted",
                             self.limits.send_timeout_s)
            self.transport.abort()
            return
        self.schedule_send_check()
