"""What one client may hold, against the real server: header size, stalled readers, idle
connections and requests stalled in their headers or body (``service/server/protocol.py``).

The server under test has short timeouts so each case takes seconds; every wait is a
bounded loop (a liveness bound, not a performance assertion). Figures are printed
(``-s``) for docs/reliability.md.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from e2e_helpers import RunningServer, start_server, wait_for
from fault_helpers import BIG, MIB, SMALL, proc_status, reset_peak_rss

SEND_TIMEOUT_S = 2.0
IDLE_TIMEOUT_S = 1.0
HEADER_TIMEOUT_S = 2.0
BODY_TIMEOUT_S = 2.0
MAX_HEADER_BYTES = 64 * 1024
STREAMS = 8


@pytest.fixture(scope="module")
def guarded() -> Iterator[RunningServer]:
    server = start_server(send_timeout_s=str(SEND_TIMEOUT_S), idle_timeout_s=str(IDLE_TIMEOUT_S),
                          header_timeout_s=str(HEADER_TIMEOUT_S),
                          body_timeout_s=str(BODY_TIMEOUT_S),
                          max_concurrent_streams=str(STREAMS))
    try:
        yield server
    finally:
        server.stop()


def connect(server: RunningServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)  # fill up early
    return sock


def read_until_closed(sock: socket.socket, timeout_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes (bounded), and when it closed."""
    sock.settimeout(timeout_s)
    received = b""
    started = time.monotonic()
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return received, time.monotonic() - started


def post_head(body: bytes, path: str = "/v1/init", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def test_oversized_headers_get_431_after_at_most_the_limit(guarded: RunningServer) -> None:
    """A 300 MB header: the server reads at most the limit (plus a read's worth), answers
    431 in the error format and closes; its memory stays flat and /healthz answers."""
    pid = guarded.process.pid
    before = proc_status(pid)["VmRSS"]
    reset_peak_rss(pid)
    sock = connect(guarded)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    line = b"X-Flood: " + b"a" * 8000 + b"\r\n"
    sent = 0
    started = time.monotonic()
    health: list[int] = []
    checker = threading.Thread(target=lambda: health.append(
        httpx.get(guarded.base_url + "/healthz", timeout=30).status_code))
    try:
        while sent < 300 * MIB:
            sock.sendall(line * 128)
            sent += len(line) * 128
            if sent > MAX_HEADER_BYTES * 4 and not checker.is_alive() and not health:
                checker.start()
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer, _ = read_until_closed(sock, 30)
    sock.close()
    checker.join(30)
    peak = proc_status(pid)["VmHWM"] - before
    print(f"figures: header flood: {sent / MIB:.1f} MiB sent before the server closed, "
          f"{time.monotonic() - started:.2f} s, peak RSS +{peak / MIB:.1f} MiB")
    assert status_of(answer) == 431
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_header_fields_too_large"
    assert sent < 300 * MIB  # cut off long before the end
    assert peak < 32 * MIB
    assert health == [200]


def test_headers_just_under_the_limit_are_served(guarded: RunningServer) -> None:
    headers = {f"x-pad-{i}": "b" * 1000 for i in range(50)}  # ~51 KiB
    response = httpx.post(guarded.base_url + "/v1/plan", json=SMALL, headers=headers, timeout=60)
    assert response.status_code == 200


def test_stalled_readers_lose_their_slots_within_the_send_timeout(guarded: RunningServer
                                                                  ) -> None:
    """8 clients take every stream slot and stop reading: the next client gets 503; after
    the send timeout their streams are aborted (counted as stalled), the slots are free
    and other clients are served."""
    body = json.dumps(BIG).encode()
    stalled = []
    for _ in range(STREAMS):
        sock = connect(guarded)
        sock.sendall(post_head(body) + body)
        stalled.append(sock)
    try:
        wait_for(lambda: guarded.metric("weightinit_streams_in_flight") == STREAMS,
                 timeout_s=60, what="every slot taken")
        refused = httpx.post(guarded.base_url + "/v1/init", json=SMALL, timeout=60)
        assert refused.status_code == 503 and "retry-after" in refused.headers
        full_at = time.monotonic()
        wait_for(lambda: guarded.metric("weightinit_streams_in_flight") == 0,
                 timeout_s=60, what="the stalled streams' slots freed")
        freed_s = time.monotonic() - full_at
        print(f"figures: {STREAMS} stalled readers, send timeout {SEND_TIMEOUT_S} s: slots free "
              f"{freed_s:.2f} s after the server was full")
        assert guarded.metric("weightinit_streams_stalled_total", endpoint="init") >= STREAMS
        served = httpx.post(guarded.base_url + "/v1/init", json=SMALL, timeout=60)
        assert served.status_code == 200
        for sock in stalled:  # each was reset, not left open holding its buffer
            _, _ = read_until_closed(sock, 10)
    finally:
        for sock in stalled:
            sock.close()


def test_an_idle_connection_is_closed(guarded: RunningServer) -> None:
    sock = connect(guarded)
    answer, after_s = read_until_closed(sock, 30)
    sock.close()
    assert answer == b"" and after_s < 30


def test_a_keep_alive_connection_is_closed_when_idle(guarded: RunningServer) -> None:
    sock = connect(guarded)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer, after_s = read_until_closed(sock, 30)
    sock.close()
    assert status_of(answer) == 200 and after_s < 30


def test_headers_stalled_midway_get_408_and_close(guarded: RunningServer) -> None:
    sock = connect(guarded)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    for _ in range(3):  # slowloris: a byte now and then keeps nothing alive
        time.sleep(HEADER_TIMEOUT_S / 4)
        sock.sendall(b"a")
    answer, _ = read_until_closed(sock, 30)
    sock.close()
    assert status_of(answer) == 408
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"


def test_a_body_stalled_midway_gets_408_and_close(guarded: RunningServer) -> None:
    body = json.dumps(SMALL).encode()
    sock = connect(guarded)
    sock.sendall(post_head(body, "/v1/plan") + body[:10])
    answer, _ = read_until_closed(sock, 30)
    sock.close()
    assert status_of(answer) == 408
    assert guarded.metric("weightinit_streams_in_flight") == 0
    assert httpx.post(guarded.base_url + "/v1/plan", json=SMALL, timeout=60).status_code == 200
