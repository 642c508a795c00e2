"""SIGTERM drains: readiness drops at once, new streams are refused, streams in flight
finish, then the process exits 0 (each test runs its own server, since it stops it)."""

from __future__ import annotations

import http.client
import json
import signal

import httpx
from e2e_helpers import start_server, wait_for

MIB = 1 << 20
# 256 MiB: long enough to be in flight when SIGTERM arrives, since the test reads slowly.
STREAM = {"seed": 8, "layers": [
    {"type": "tensor", "name": f"w{i}", "shape": [4096, 4096],
     "init": {"name": "uniform", "low": -1.0, "high": 1.0}} for i in range(4)
]}
SMALL = {"seed": 1, "layers": [{"type": "linear", "name": "fc", "in_features": 4,
                                "out_features": 2}]}


def start_stream(port: int) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("POST", "/v1/init", body=json.dumps(STREAM).encode(),
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    return connection, response


def test_sigterm_drains_the_stream_in_flight_then_exits_0() -> None:
    server = start_server(drain_timeout_s="120", retry_after_s="3")
    try:
        connection, stream = start_stream(server.port)
        expected = int(stream.getheader("Content-Length"))
        received = len(stream.read(MIB))
        server.process.send_signal(signal.SIGTERM)

        def readiness() -> int:
            return httpx.get(server.base_url + "/readyz", timeout=10).status_code

        wait_for(lambda: readiness() == 503, what="/readyz to turn 503")
        assert httpx.get(server.base_url + "/healthz", timeout=10).status_code == 200
        refused = httpx.post(server.base_url + "/v1/init", json=SMALL, timeout=10)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "3"
        assert refused.json()["error"]["code"] == "draining"
        assert server.process.poll() is None  # still serving the stream

        while chunk := stream.read(8 * MIB):
            received += len(chunk)
        assert received == expected
        connection.close()
        assert server.process.wait(timeout=60) == 0
    finally:
        server.stop()


def test_drain_timeout_bounds_the_wait_for_a_stalled_stream() -> None:
    server = start_server(drain_timeout_s="1")
    try:
        connection, stream = start_stream(server.port)
        stream.read(MIB)  # then never read again
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0
        connection.close()
    finally:
        server.stop()


def test_worker_processes_serve_the_same_bytes_and_drain() -> None:
    server = start_server(workers=2, drain_timeout_s="120")
    try:
        bodies = {httpx.post(server.base_url + "/v1/init", json=SMALL, timeout=60).content
                  for _ in range(6)}
        assert len(bodies) == 1
        connection, stream = start_stream(server.port)
        expected = int(stream.getheader("Content-Length"))
        received = len(stream.read(MIB))
        server.process.send_signal(signal.SIGTERM)  # the supervisor passes it to each worker
        while chunk := stream.read(8 * MIB):
            received += len(chunk)
        assert received == expected
        connection.close()
        assert server.process.wait(timeout=90) == 0
    finally:
        server.stop()
