"""How many streams may run at once, and the drain after SIGTERM.

A stream (``/v1/init``, ``/v1/report``) takes a slot before its response starts and gives
it back when its last byte is sent or it is abandoned. Over ``max_concurrent_streams``
(per worker process), or once draining, a new stream gets 503 with ``Retry-After``: the
client retries elsewhere or later, and the streams in flight keep their share of the
CPU. Over ``max_streams_per_token`` it gets 429 with ``Retry-After``: that client is
over its own share, the server is not full. Everything here runs on the event loop thread (the
signal handler too), so plain counters need no lock.
"""

from __future__ import annotations

import time
from collections import Counter

from weightinit.service.server.errors import ApiError, unavailable
from weightinit.service.server.metrics import Metrics


class StreamSlot:
    """One stream's claim on capacity; ``release()`` may be called more than once."""

    def __init__(self, capacity: Capacity, principal: str | None) -> None:
        self._capacity = capacity
        self._principal = principal
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._capacity._release(self._principal)


class Capacity:
    """Stream slots, per process and per token, and the draining state."""

    def __init__(
        self, max_streams: int, max_per_token: int, retry_after_s: int, metrics: Metrics
    ) -> None:
        self.max_streams = max_streams
        self.max_per_token = max_per_token
        self.retry_after_s = retry_after_s
        self.metrics = metrics
        self.in_flight = 0
        self._per_principal: Counter[str] = Counter()
        self.draining = False
        self.drain_deadline: float | None = None

    def acquire(self, principal: str | None) -> StreamSlot:
        """A slot for a new stream, or the 503/429 ``ApiError`` saying why not."""
        if self.draining:
            self.metrics.streams_rejected.labels("draining").inc()
            raise unavailable("draining", "the server is shutting down; retry on another "
                              "replica", self.retry_after_s)
        if self.in_flight >= self.max_streams:
            self.metrics.streams_rejected.labels("capacity").inc()
            raise unavailable("at_capacity", f"{self.in_flight} streams in flight, the "
                              f"limit is {self.max_streams}", self.retry_after_s)
        if principal is not None and self._per_principal[principal] >= self.max_per_token:
            self.metrics.streams_rejected.labels("token_limit").inc()
            raise ApiError(429, "token_at_capacity", f"this token already has "
                           f"{self.max_per_token} streams in flight, its limit",
                           headers={"Retry-After": str(self.retry_after_s)})
        self.in_flight += 1
        if principal is not None:
            self._per_principal[principal] += 1
        self.metrics.streams_in_flight.inc()
        return StreamSlot(self, principal)

    def _release(self, principal: str | None) -> None:
        self.in_flight -= 1
        if principal is not None:
            self._per_principal[principal] -= 1
            if self._per_principal[principal] <= 0:
                del self._per_principal[principal]
        self.metrics.streams_in_flight.dec()

    def start_drain(self, timeout_s: float) -> None:
        """Refuse new streams from now on; those in flight have ``timeout_s`` to finish."""
        if not self.draining:
            self.draining = True
            self.drain_deadline = time.monotonic() + timeout_s

    def drain_remaining_s(self) -> float:
        """Seconds left until the drain deadline (0 when not draining or past it)."""
        if self.drain_deadline is None:
            return 0.0
        return max(0.0, self.drain_deadline - time.monotonic())

    def drain_finished(self) -> bool:
        """Draining, and either no stream is left or the deadline has passed."""
        return self.draining and (self.in_flight == 0 or self.drain_remaining_s() == 0.0)
