"""The client's HTTP layer reading large bodies straight from the socket (``MSG_WAITALL``):
same bytes as ``http.client``'s reads, the body's end noticed, the connection reused, and a
stalled, cut or interrupted body ended in bounded time. Peers are 127.0.0.1 sockets
scripted byte by byte, and the real server; every wait is bounded."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from live_server import RunningServer
from weightinit.core import ChunkStream, Spec, build_plan
from weightinit.core.safetensors_io.writer import header_bytes
from weightinit.service.client.client import Client, WeightinitError
from weightinit.service.client.http import (
    DIRECT_READ_BYTES,
    Endpoint,
    Transport,
    recv_all,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the MSG_WAITALL path is Linux's")
BODY = np.random.default_rng(5).integers(0, 256, 3 * DIRECT_READ_BYTES + 12345,
                                          dtype=np.uint8).tobytes()


@contextmanager
def scripted_peer(script: Any) -> Iterator[tuple[int, list[int]]]:
    """A 127.0.0.1 server running ``script(connection)`` per accepted connection (each
    request line consumed first); yields its port and the count of connections."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    accepted = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted[0] += 1
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    def handle(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(30)
            reader = connection.makefile("rb")
            while not stop.is_set():
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")]
                reader.read(length[0] if length else 0)
                if script(connection) == "close":
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


def _head(length: int) -> bytes:
    return (f"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
            f"content-length: {length}\r\n\r\n").encode()


def _transport(port: int, timeout_s: float = 30.0) -> Transport:
    return Transport([Endpoint.parse(f"http://127.0.0.1:{port}")], timeout_s=timeout_s,
                     retries=0)


def _read_all(reply: Any, step: int) -> bytes:
    out = bytearray(len(BODY) + step)
    view, done = memoryview(out), 0
    while count := reply.readinto(view[done : done + step]):
        done += count
    return bytes(out[:done])


@linux_only
@pytest.mark.parametrize("step", [DIRECT_READ_BYTES, 2 * DIRECT_READ_BYTES + 7, 64 << 20])
@pytest.mark.parametrize("segment", [1000, 65536, 1 << 20])
def test_large_reads_give_the_body_exactly_and_the_connection_is_reused(
        step: int, segment: int) -> None:
    """The head and the body's first bytes arrive together (http.client buffers them), the
    rest in segments of every size; read in steps at the threshold, odd and larger than
    the body. A second request on the same transport reuses the connection."""

    def script(connection: socket.socket) -> None:
        data = _head(len(BODY)) + BODY
        for start in range(0, len(data), segment):
            connection.sendall(data[start : start + segment])

    with scripted_peer(script) as (port, accepted):
        transport = _transport(port)
        try:
            for _ in range(2):
                with transport.open("POST", "/v1/init", {}) as reply:
                    assert _read_all(reply, step) == BODY
                    assert reply.readinto(memoryview(bytearray(DIRECT_READ_BYTES))) == 0
        finally:
            transport.close()
    assert accepted[0] == 1


@linux_only
def test_a_body_cut_short_ends_early_and_the_client_refuses_it(tmp_path: Any) -> None:
    """The reads stop at the cut (0 before the body's length, as http.client's do), and
    ``Client.init`` of such a body fails and leaves no file."""
    half = len(BODY) // 2

    def script(connection: socket.socket) -> str:
        connection.sendall(_head(len(BODY)) + BODY[:half])
        return "close"

    with scripted_peer(script) as (port, _):
        transport = _transport(port)
        with transport.open("POST", "/v1/init", {}) as reply:
            assert _read_all(reply, 4 * DIRECT_READ_BYTES) == BODY[:half]
        transport.close()

    header = json.dumps({"x": {"dtype": "U8", "shape": [len(BODY)],
                               "data_offsets": [0, len(BODY)]}}).encode()
    header += b" " * (-len(header) % 8)
    whole = len(header).to_bytes(8, "little") + header + BODY

    def cut_file(connection: socket.socket) -> str:
        connection.sendall(_head(len(whole)) + whole[: len(whole) // 2])
        return "close"

    with scripted_peer(cut_file) as (port, _), Client(
            f"http://127.0.0.1:{port}", retries=0) as client, pytest.raises(WeightinitError):
        client.init({"seed": 1, "layers": []}, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


@linux_only
def test_a_stalled_body_times_out_within_the_read_timeout() -> None:
    """Half the body, then silence with the connection open: the read ends with
    TimeoutError after about the transport's read timeout (here 0.5 s), not never."""
    release = threading.Event()

    def script(connection: socket.socket) -> str:
        connection.sendall(_head(len(BODY)) + BODY[: len(BODY) // 2])
        release.wait(20)
        return "close"

    with scripted_peer(script) as (port, _):
        transport = _transport(port, timeout_s=0.5)
        begin = time.monotonic()
        try:
            with transport.open("POST", "/v1/init", {}) as reply, pytest.raises(TimeoutError):
                _read_all(reply, 4 * DIRECT_READ_BYTES)
        finally:
            release.set()
            transport.close()
        assert time.monotonic() - begin < 10  # two timeouts at most, bounded


@linux_only
def test_interrupt_from_another_thread_ends_a_blocked_read() -> None:
    release = threading.Event()

    def script(connection: socket.socket) -> str:
        connection.sendall(_head(len(BODY)) + BODY[:1000])
        release.wait(20)
        return "close"

    with scripted_peer(script) as (port, _):
        transport = _transport(port)
        try:
            with transport.open("POST", "/v1/init", {}) as reply:
                timer = threading.Timer(0.3, reply.interrupt)
                timer.start()
                begin = time.monotonic()
                try:
                    got = _read_all(reply, 4 * DIRECT_READ_BYTES)
                except OSError:
                    got = b""
                assert len(got) < len(BODY)  # ended at the interrupt, short of the body
                assert time.monotonic() - begin < 10
                timer.join()
        finally:
            release.set()
            transport.close()


@linux_only
def test_recv_all_fills_the_view_and_restores_the_timeout() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.settimeout(5.0)
        sender = threading.Thread(target=lambda: [right.sendall(BODY[i : i + 4096])
                                                  for i in range(0, len(BODY), 4096)])
        sender.start()
        out = bytearray(len(BODY))
        assert recv_all(left, memoryview(out)) == len(BODY)
        sender.join()
        assert bytes(out) == BODY
        assert left.gettimeout() == 5.0
        right.sendall(b"abc")
        right.shutdown(socket.SHUT_WR)
        short = bytearray(10)
        assert recv_all(left, memoryview(short)) == 3  # the peer closed: fewer bytes
        assert bytes(short[:3]) == b"abc"


@linux_only
@pytest.mark.parametrize("timeout", [0.2, 1e-9])
def test_recv_all_times_out_when_nothing_comes(timeout: float) -> None:
    """No byte within the socket's timeout: TimeoutError, however small the timeout (a
    zero SO_RCVTIMEO would mean no timeout at all)."""
    left, right = socket.socketpair()
    with left, right:
        left.settimeout(timeout)
        begin = time.monotonic()
        with pytest.raises(TimeoutError):
            recv_all(left, memoryview(bytearray(10)))
        assert time.monotonic() - begin < 5
        assert left.gettimeout() == timeout


def test_a_large_model_from_the_real_server_is_the_engines_bytes(server: RunningServer,
                                                                  tmp_path: Any) -> None:
    """About 12 MB (reads far above the direct-read threshold) through ``Client.init`` as
    arrays, as a file (reads into a file mapping, sha256 on the way) and in two parallel
    streams (each reading its region; as arrays and as torch tensors): every time the
    engine's bytes made here."""
    spec = {"seed": 3, "dtype": "float32", "layers": [
        {"type": "tensor", "name": "a", "shape": [1500, 1000],
         "init": {"name": "normal", "mean": 0.0, "std": 0.02}},
        {"type": "tensor", "name": "b", "shape": [1500, 1000], "init": "ones"}]}
    plan = build_plan(Spec.model_validate(spec))
    expected = header_bytes(plan) + b"".join(
        chunk.data.tobytes() for chunk in ChunkStream(plan))
    data_start = 8 + int.from_bytes(expected[:8], "little")
    with Client(server.url) as client:
        arrays = client.init(spec)
        written = client.init(spec, tmp_path / "m.safetensors")
    with Client(server.url, parallel=2) as client:
        parallel = client.init(spec)
        tensors = client.init_tensors(spec)
    for got in (arrays, parallel):
        assert b"".join(got[name].tobytes() for name in ("a", "b")) == expected[data_start:]
    assert b"".join(tensors[name].numpy().tobytes() for name in ("a", "b")) == (
        expected[data_start:])
    assert (tmp_path / "m.safetensors").read_bytes()[data_start:] == expected[data_start:]
    assert written.file_sha256 == hashlib.sha256(
        (tmp_path / "m.safetensors").read_bytes()).hexdigest()
