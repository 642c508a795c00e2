"""Prometheus metrics, in a registry of the app's own (so tests can build many apps).

Streams (``/v1/init`` and ``/v1/report``) are counted when they start, complete or are
aborted (client gone, server draining past its deadline, error), and the chunks they took
from the generator are counted as they are generated: after a client disconnects the
chunk counter stops moving, which is how the tests see that generation stopped.
With several worker processes each has its own registry; ``/metrics`` shows the worker
that answered.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800)
PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The service's counters, gauges and histograms."""

    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only double the exposition
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "weightinit_http_requests", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=registry,
        )
        self.request_seconds = Histogram(
            "weightinit_http_request_duration_seconds",
            "Time from request to the last byte of the response, by route",
            ["route"], buckets=_SECONDS_BUCKETS, registry=registry,
        )
        self.bytes_streamed = Counter(
            "weightinit_bytes_streamed", "Bytes of safetensors data sent to clients",
            registry=registry,
        )
        self.parameters_streamed = Counter(
            "weightinit_parameters_streamed", "Tensor elements generated for clients",
            registry=registry,
        )
        self.chunks_generated = Counter(
            "weightinit_chunks_generated", "Chunks taken from the generator by streams",
            registry=registry,
        )
        self.generation_seconds = Histogram(
            "weightinit_generation_seconds", "Duration of a stream from first to last chunk",
            ["endpoint"], buckets=_SECONDS_BUCKETS, registry=registry,
        )
        self.streams_in_flight = Gauge(
            "weightinit_streams_in_flight", "Streams generating right now", registry=registry,
        )
        self.streams_started = Counter(
            "weightinit_streams_started", "Streams started", ["endpoint"], registry=registry,
        )
        self.streams_completed = Counter(
            "weightinit_streams_completed", "Streams that sent their last byte",
            ["endpoint"], registry=registry,
        )
        self.streams_aborted = Counter(
            "weightinit_streams_aborted", "Streams stopped before the end (client gone, error)",
            ["endpoint"], registry=registry,
        )
        self.streams_stalled = Counter(
            "weightinit_streams_stalled",
            "Aborted streams whose client took no bytes for WEIGHTINIT_SEND_TIMEOUT_S "
            "(also counted as aborted)", ["endpoint"], registry=registry,
        )
        self.streams_rejected = Counter(
            "weightinit_streams_rejected",
            "Streams refused: 503 (capacity, draining) or 429 (token_limit)",
            ["reason"], registry=registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
