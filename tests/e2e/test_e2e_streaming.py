"""Large streams against the real server: slow readers, disconnects, concurrency, memory."""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
from e2e_helpers import RunningServer, wait_for

MIB = 1 << 20
# 1 GiB of float32 in 16 tensors: 256 chunks at the default 4 MiB.
BIG = {"seed": 3, "layers": [
    {"type": "tensor", "name": f"w{i}", "shape": [4096, 4096],
     "init": {"name": "uniform", "low": -0.1, "high": 0.1}} for i in range(16)
]}
BIG_CHUNKS = 16 * 4096 * 4096 * 4 // (4 * MIB)
SMALL = {"seed": 11, "layers": [
    {"type": "linear", "name": "fc1", "in_features": 128, "out_features": 64},
    {"type": "linear", "name": "fc2", "in_features": 64, "out_features": 10},
]}


def open_big_stream(server: RunningServer) -> tuple[http.client.HTTPConnection,
                                                     http.client.HTTPResponse]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    connection.request("POST", "/v1/init", body=json.dumps(BIG).encode(),
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    assert int(response.getheader("Content-Length")) > 1 << 30
    return connection, response


def test_small_requests_succeed_while_a_large_stream_is_read_slowly(
    server: RunningServer,
) -> None:
    expected = httpx.post(server.base_url + "/v1/init", json=SMALL, timeout=60).content
    rss_before = server.rss_bytes()
    connection, big = open_big_stream(server)
    try:
        received = len(big.read(4 * MIB))

        def small_request(index: int) -> tuple[int, bytes]:
            path = ("/v1/init", "/v1/plan", "/healthz", "/v1/report")[index % 4]
            with server.client() as client:
                method = "GET" if path == "/healthz" else "POST"
                response = client.request(method, path, json=None if method == "GET" else SMALL)
            return response.status_code, response.content if path == "/v1/init" else b""

        with ThreadPoolExecutor(4) as pool:
            for _ in range(3):  # the big stream advances a little between batches
                results = list(pool.map(small_request, range(12)))
                assert all(status == 200 for status, _ in results)
                assert all(body == expected for body in (b for _, b in results) if body)
                received += len(big.read(2 * MIB))
        # The stream is stalled on this client: the server must not have buffered it. The
        # bound is generous (window of 4 chunks of 4 MiB, socket buffers, allocator slack)
        # and still far below the 1 GiB the stream would take if it were buffered.
        assert server.rss_bytes() - rss_before < 256 * MIB
        assert received == 10 * MIB
    finally:
        big.close()
        connection.close()


def test_client_disconnect_mid_stream_stops_generation(server: RunningServer) -> None:
    aborted_before = server.metric("weightinit_streams_aborted_total", endpoint="init")
    chunks_before = server.metric("weightinit_chunks_generated_total")
    connection, big = open_big_stream(server)
    assert len(big.read(8 * MIB)) == 8 * MIB
    big.close()
    connection.close()
    wait_for(lambda: server.metric("weightinit_streams_aborted_total", endpoint="init")
             > aborted_before, what="the server to count the aborted stream")
    generated = server.metric("weightinit_chunks_generated_total") - chunks_before
    # 8 MiB read = 2 chunks; the rest is what socket buffers and the window held.
    assert generated < BIG_CHUNKS / 4
    assert server.metric("weightinit_chunks_generated_total") - chunks_before == generated
    assert server.metric("weightinit_streams_in_flight") == 0
