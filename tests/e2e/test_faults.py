"""Faults against the real server: clients that vanish, crawl, or outlive the process.

Each long version is marked ``slow`` (``pytest -m slow``); the default run has a shorter
one of each. Memory and thread bounds are derived from the server's stream window, not
from timing; every wait is a bounded poll.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import math
import os
import random
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from e2e_helpers import RunningServer, start_server, wait_for
from fault_helpers import (
    BIG,
    BIG_CHUNKS,
    CHUNK_BYTES,
    MEDIUM,
    MIB,
    SMALL,
    STREAM_WINDOW,
    abort,
    alive,
    file_sha256,
    open_stream,
    proc_status,
    read_into_digest,
    read_throttled,
    socket_buffer_bytes,
    worker_pids,
)

# Chunks a stream may have taken from the generator beyond what its reader received:
# the window generated ahead, what the kernel's socket buffers hold, and the chunk being
# sent when the client went away.
SLACK_CHUNKS = STREAM_WINDOW + math.ceil(socket_buffer_bytes() / CHUNK_BYTES) + 2


def small_body_ok(base_url: str) -> bool:
    response = httpx.post(base_url + "/v1/init", json=SMALL, timeout=60)
    return (response.status_code == 200
            and hashlib.sha256(response.content).hexdigest() == file_sha256(SMALL))


def stream_then_vanish(port: int, seed: int) -> int:
    """Open the 1 GiB stream, read a random amount of it, drop the connection; 503s
    (slots not yet given back by streams that just ended) are retried. Bytes read."""
    chooser = random.Random(seed)
    for _ in range(200):
        connection, response = open_stream(port, BIG)
        if response.status == 200:
            break
        assert response.status == 503 and response.getheader("Retry-After"), response.status
        response.read()
        connection.close()
        threading.Event().wait(0.1)
    else:
        raise AssertionError("no stream slot within 200 tries")
    cut = chooser.choice([0, chooser.randrange(1, 64 * MIB)])  # right after the headers, too
    received = read_into_digest(response, hashlib.sha256(), cut)
    abort(connection, reset=chooser.random() < 0.5)
    return received


def disconnect_storm(server: RunningServer, clients: int, seed: int) -> list[int]:
    """``clients`` streams, 6 at a time, each cut at a random point; waits until the
    server has counted every one as aborted and none is in flight."""
    aborted = server.metric("weightinit_streams_aborted_total", endpoint="init")
    with ThreadPoolExecutor(6) as pool:
        received = list(pool.map(lambda i: stream_then_vanish(server.port, seed + i),
                                 range(clients)))
    wait_for(lambda: server.metric("weightinit_streams_aborted_total", endpoint="init")
             >= aborted + clients, what="every cut stream to be counted as aborted")
    wait_for(lambda: server.metric("weightinit_streams_in_flight") == 0,
             what="no stream left in flight")
    return received


@pytest.mark.parametrize("clients", [12, pytest.param(100, marks=pytest.mark.slow)])
def test_clients_vanishing_mid_stream_stop_generation_and_leak_nothing(
    server: RunningServer, clients: int
) -> None:
    pid = server.process.pid
    disconnect_storm(server, 6, seed=10_000)  # warm-up: pools and allocator at their size
    baseline = proc_status(pid)
    chunks_before = server.metric("weightinit_chunks_generated_total")

    received = disconnect_storm(server, clients, seed=0)

    taken = server.metric("weightinit_chunks_generated_total") - chunks_before
    read_chunks = sum(math.ceil(n / CHUNK_BYTES) for n in received)
    # Generation stopped with each client: read + slack per stream, not 256 chunks each.
    assert taken <= read_chunks + clients * SLACK_CHUNKS < clients * BIG_CHUNKS
    # A leak of one stream window per cut stream would be clients * 16 MiB >= 192 MiB;
    # 64 MiB leaves room for allocator slack (measured: under 16 MiB).
    wait_for(lambda: proc_status(pid)["VmRSS"] < baseline["VmRSS"] + 64 * MIB,
             what="server RSS back near its baseline")
    # Thread pools are fixed-size; only the planning pool (cpu + 4 threads) may still be
    # growing. A thread per cut stream would add ``clients`` >= 12 threads.
    assert proc_status(pid)["Threads"] < baseline["Threads"] + (os.cpu_count() or 1) + 4
    assert server.metric("weightinit_chunks_generated_total") == chunks_before + taken
    after = proc_status(pid)
    print(f"figures: {clients} cut streams, {sum(received) / MIB:.0f} MiB read, {taken:.0f} "
          f"chunks taken ({read_chunks} read); RSS {baseline['VmRSS'] / MIB:.0f} -> "
          f"{after['VmRSS'] / MIB:.0f} MiB, threads {baseline['Threads']} -> {after['Threads']}")
    assert small_body_ok(server.base_url)
    assert httpx.get(server.base_url + "/healthz", timeout=30).status_code == 200


@pytest.mark.parametrize("seconds", [4.0, pytest.param(30.0, marks=pytest.mark.slow)])
def test_a_reader_throttled_to_1_mb_per_s_gets_backpressure_not_buffering(
    server: RunningServer, seconds: float
) -> None:
    pid = server.process.pid
    chunks_before = server.metric("weightinit_chunks_generated_total")
    assert small_body_ok(server.base_url)
    chunks_per_small = server.metric("weightinit_chunks_generated_total") - chunks_before
    baseline = proc_status(pid)["VmRSS"]
    chunks_before = server.metric("weightinit_chunks_generated_total")
    connection, slow = open_stream(server.port, BIG)
    assert slow.status == 200
    read_by_slow: list[int] = []
    reader = threading.Thread(
        target=lambda: read_by_slow.append(read_throttled(slow, 1e6, seconds)))
    reader.start()
    served = peak = 0
    while reader.is_alive():  # another client, served while the slow one crawls
        assert small_body_ok(server.base_url)
        served += 1
        peak = max(peak, proc_status(pid)["VmRSS"])
    reader.join()
    taken = server.metric("weightinit_chunks_generated_total") - chunks_before
    abort(connection, reset=False)

    print(f"figures: throttled reader got {read_by_slow[0] / MIB:.1f} MiB in {seconds:.0f} s, "
          f"{taken - served * chunks_per_small:.0f} chunks generated for it; {served} small "
          f"requests served meanwhile; RSS {baseline / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB")
    assert served > 0
    slow_chunks = taken - served * chunks_per_small
    # Backpressure: the generator ran ahead of the reader by at most the window plus what
    # the socket buffers hold (generating freely, 1 GiB would be done in about a second).
    assert slow_chunks <= math.ceil(read_by_slow[0] / CHUNK_BYTES) + SLACK_CHUNKS
    # The stream holds one window (16 MiB) plus the chunk in the socket's send buffer;
    # 96 MiB adds room for the other client's requests and allocator slack.
    assert peak - baseline < 96 * MIB


def test_sigterm_during_streams_drains_them_and_refuses_new_ones() -> None:
    server = start_server(drain_timeout_s="60", retry_after_s="2")
    try:
        streams = [open_stream(server.port, MEDIUM) for _ in range(3)]
        digests = [hashlib.sha256() for _ in streams]
        received = [read_into_digest(response, digest, MIB)
                    for (_, response), digest in zip(streams, digests, strict=True)]
        server.process.send_signal(signal.SIGTERM)

        # The very first readiness probe after the signal already says 503: the handler
        # runs on the event loop's thread before it can read the probe.
        ready = httpx.get(server.base_url + "/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json() == {"status": "draining"}
        refused = httpx.post(server.base_url + "/v1/init", json=SMALL, timeout=30)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "draining"
        assert refused.headers["retry-after"] == "2"
        assert httpx.get(server.base_url + "/healthz", timeout=30).status_code == 200

        for (connection, response), digest, index in zip(streams, digests, range(3),
                                                         strict=True):
            received[index] += read_into_digest(response, digest)
            assert received[index] == int(response.getheader("Content-Length"))
            assert digest.hexdigest() == file_sha256(MEDIUM)
            connection.close()
        # Exit 0 within the grace period (the drain timeout).
        assert server.process.wait(timeout=60) == 0
    finally:
        server.stop()


def test_a_worker_killed_with_sigkill_is_replaced_and_the_service_keeps_answering() -> None:
    server = start_server(workers=2)
    supervisor = server.process.pid
    try:
        wait_for(lambda: len(worker_pids(supervisor)) == 2, what="two workers")
        first, second = sorted(worker_pids(supervisor))
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: not alive(first), what="the killed worker to be gone")
        # The other worker answers at once: no request fails.
        assert all(small_body_ok(server.base_url) for _ in range(8))
        wait_for(lambda: len(worker_pids(supervisor) - {second}) == 1, timeout_s=90,
                 what="a replacement worker")
        os.kill(second, signal.SIGKILL)
        wait_for(lambda: not alive(second), what="the second worker to be gone")

        def answered() -> bool:  # by the replacement (the second one may still be starting)
            try:
                return small_body_ok(server.base_url)
            except httpx.TransportError:
                return False

        wait_for(answered, timeout_s=90, what="the replacement to answer")
        assert all(small_body_ok(server.base_url) for _ in range(8))
        wait_for(lambda: len(worker_pids(supervisor)) == 2, timeout_s=90,
                 what="two workers again")
        assert server.process.poll() is None
    finally:
        server.stop()


def test_a_stream_cut_by_a_restart_is_retried_with_identical_bytes_and_etag() -> None:
    first = start_server()
    try:
        connection, response = open_stream(first.port, MEDIUM)
        etag = response.getheader("ETag")
        expected = int(response.getheader("Content-Length"))
        partial = hashlib.sha256()
        received = read_into_digest(response, partial, 8 * MIB)
        first.process.kill()  # a crash, not a drain
        first.process.wait(timeout=60)
        with contextlib.suppress(OSError, http.client.HTTPException):  # reset or short read
            received += read_into_digest(response, partial)
        assert received < expected
        connection.close()
    finally:
        first.stop()

    second = start_server(port=first.port)  # the same address, a new process
    try:
        connection, retried = open_stream(second.port, MEDIUM)
        assert retried.status == 200
        assert retried.getheader("ETag") == etag
        digest = hashlib.sha256()
        assert read_into_digest(retried, digest) == expected
        assert digest.hexdigest() == file_sha256(MEDIUM)
        connection.close()
        revalidated = httpx.post(second.base_url + "/v1/init", json=MEDIUM, timeout=60,
                                 headers={"If-None-Match": etag})
        assert revalidated.status_code == 304
    finally:
        second.stop()
