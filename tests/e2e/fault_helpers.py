"""What the fault, load and hostile-input tests need beside the server fixture: specs with
the sha256 the library gives them, raw streams, throttled reading and /proc readings of
the server process (RSS, peak RSS, threads, worker processes). Loopback only; every wait
is bounded.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import struct
import time
from functools import cache
from pathlib import Path
from typing import Any

MIB = 1 << 20
CHUNK_BYTES = 4 * MIB  # the server's default WEIGHTINIT_CHUNK_BYTES
STREAM_WINDOW = 4  # the server's default WEIGHTINIT_STREAM_WINDOW

# 1 GiB of float32 in 16 tensors (256 chunks): never read to the end by these tests.
BIG = {"seed": 3, "layers": [
    {"type": "tensor", "name": f"w{i}", "shape": [4096, 4096],
     "init": {"name": "uniform", "low": -0.1, "high": 0.1}} for i in range(16)
]}
BIG_CHUNKS = 16 * 4096 * 4096 * 4 // CHUNK_BYTES
# 64 MiB, float32 and bfloat16, read to the end and checked against the library.
MEDIUM = {"seed": 17, "layers": [
    {"type": "tensor", "name": "uniform", "shape": [2048, 4096],
     "init": {"name": "uniform", "low": -0.05, "high": 0.05}},
    {"type": "tensor", "name": "normal", "shape": [4096, 4096], "dtype": "bfloat16",
     "init": {"name": "truncated_normal", "mean": 0.0, "std": 0.02}},
]}
SMALL = {"seed": 11, "layers": [
    {"type": "linear", "name": "fc1", "in_features": 128, "out_features": 64},
    {"type": "linear", "name": "fc2", "in_features": 64, "out_features": 10},
]}


@cache
def _file_sha256(spec_json: str) -> str:
    from weightinit.core import ChunkStream, Spec, build_plan, header_bytes

    plan = build_plan(Spec.model_validate_json(spec_json))
    digest = hashlib.sha256(header_bytes(plan))
    for chunk in ChunkStream(plan):
        digest.update(chunk.buffer)
    return digest.hexdigest()


def file_sha256(spec: dict) -> str:
    """sha256 of the file the library makes in this process for ``spec`` (cached)."""
    return _file_sha256(json.dumps(spec, sort_keys=True))


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS``/``VmHWM`` in bytes and ``Threads`` of a process, from /proc."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(value.split()[0]) * 1024
        elif key == "Threads":
            values[key] = int(value)
    return values


def reset_peak_rss(pid: int) -> None:
    """Start a new VmHWM measurement (Linux: ``5`` to ``clear_refs``)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent's ``wait`` counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def worker_pids(supervisor: int) -> set[int]:
    """The live uvicorn worker processes (multiprocessing spawn children) of a supervisor."""
    workers = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == supervisor and b"spawn_main" in cmdline and alive(int(entry.name)):
            workers.add(int(entry.name))
    return workers


def open_stream(port: int, spec: dict, headers: dict[str, str] | None = None
                ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """POST ``/v1/init`` and return once the response headers are in."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("POST", "/v1/init", body=json.dumps(spec).encode(),
                       headers={"Content-Type": "application/json", **(headers or {})})
    return connection, connection.getresponse()


def read_into_digest(response: http.client.HTTPResponse, digest: Any,
                     limit: int | None = None) -> int:
    """Read the body (at most ``limit`` bytes) into ``digest``; the number of bytes read."""
    buffer = memoryview(bytearray(MIB))
    received = 0
    while limit is None or received < limit:
        want = MIB if limit is None else min(MIB, limit - received)
        count = response.readinto(buffer[:want])
        if not count:
            break
        digest.update(buffer[:count])
        received += count
    return received


def read_throttled(response: http.client.HTTPResponse, bytes_per_s: float, seconds: float,
                   piece_bytes: int = 64 << 10) -> int:
    """Read at ``bytes_per_s`` for ``seconds`` (pieces of ``piece_bytes``); bytes read."""
    started = time.monotonic()
    received = 0
    while (elapsed := time.monotonic() - started) < seconds:
        ahead = received / bytes_per_s - elapsed
        if ahead > 0:
            time.sleep(min(ahead, seconds - elapsed))
            continue
        received += len(response.read(piece_bytes))
    return received


def abort(connection: http.client.HTTPConnection, reset: bool) -> None:
    """Drop the connection: a FIN, or an RST (``SO_LINGER`` 0) when ``reset``."""
    if connection.sock is not None and reset:
        connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if connection.sock is not None:
        connection.sock.close()
    connection.close()


def socket_buffer_bytes() -> int:
    """The most loopback TCP may hold between the server's send and our read: the
    largest send buffer plus the largest receive buffer the kernel allows."""
    wmem = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    rmem = int(Path("/proc/sys/net/ipv4/tcp_rmem").read_text().split()[2])
    return wmem + rmem
