"""How fast the Python client downloads: ``Client.init`` against a server that streams a
ready buffer, beside the raw transports (httpx, urllib3, http.client) for comparison.

    python benchmarks/client_throughput.py [--gib 1] [--runs 5] [--check]

A tiny ASGI app (run by uvicorn in a subprocess, so server and client do not share a
GIL) answers ``POST /v1/init`` with one preallocated safetensors file (one float32
tensor), and with ``Accept: multipart/mixed`` the same file plus a small JSON report.
Generation costs nothing here, so what is measured is the transport and the client:
the target is at least 2 GB/s through ``Client.init`` to a file on loopback. ``--check``
exits 1 when the median is below it.

The figures are in benchmarks/README.md (the Python client's transport).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TARGET_GB_S = 2.0
SEND_CHUNK = 2 << 20
BOUNDARY = b"weightinit-benchmark-boundary-5f0c3e1a9b7d4e2f8a6c"


def safetensors_file(nbytes: int) -> bytearray:
    """One float32 tensor of ``nbytes`` (random-looking bytes, so nothing compresses)."""
    header = json.dumps({"x": {"dtype": "F32", "shape": [nbytes // 4],
                               "data_offsets": [0, nbytes // 4 * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    block = os.urandom(1 << 20)
    body = bytearray(struct.pack("<Q", len(header)) + header)
    body += block * (nbytes >> 20)
    return body


def make_app(body: bytearray):
    view = memoryview(body)
    part_head = (b"--" + BOUNDARY + b"\r\nContent-Type: application/octet-stream\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    report = json.dumps({"tensors": [], "file_sha256": None}).encode()
    part_tail = (b"\r\n--" + BOUNDARY + b"\r\nContent-Type: application/json\r\n\r\n"
                 + report + b"\r\n--" + BOUNDARY + b"--\r\n")

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        accept = dict(scope["headers"]).get(b"accept", b"")
        multipart = b"multipart/mixed" in accept
        if multipart:
            content_type = b"multipart/mixed; boundary=" + BOUNDARY
            pieces = [part_head, *_chunks(view), part_tail]
        else:
            content_type = b"application/octet-stream"
            pieces = list(_chunks(view))
        total = sum(len(p) for p in pieces)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", content_type), (b"content-length", str(total).encode())]})
        for index, piece in enumerate(pieces):
            await send({"type": "http.response.body", "body": piece,
                        "more_body": index < len(pieces) - 1})

    return app


def _chunks(view: memoryview):
    for start in range(0, len(view), SEND_CHUNK):
        yield view[start : start + SEND_CHUNK]


def serve(port: int, nbytes: int) -> None:
    import uvicorn

    uvicorn.run(make_app(safetensors_file(nbytes)), host="127.0.0.1", port=port,
                log_level="warning")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("benchmark server did not start")


def raw_http_client(url: str, fresh_memory: bool = False) -> int:
    """Read the body with ``http.client``: into one reused buffer (the transport alone),
    or into a fresh buffer of the body's size (plus what new memory costs, as arrays do)."""
    host, port = url.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port))
    connection.request("POST", "/v1/init", body=b"{}")
    response = connection.getresponse()
    size = int(response.getheader("Content-Length"))
    target = memoryview(bytearray(size if fresh_memory else SEND_CHUNK))
    total = 0
    while total < size:
        offset = total if fresh_memory else 0
        count = response.readinto(target[offset : offset + SEND_CHUNK])
        if not count:
            break
        total += count
    connection.close()
    return total


def raw_urllib3(url: str) -> int:
    import urllib3

    response = urllib3.request("POST", url + "/v1/init", body=b"{}", preload_content=False)
    buffer = memoryview(bytearray(SEND_CHUNK))
    total = 0
    while count := response.readinto(buffer):
        total += count
    response.release_conn()
    return total


def raw_httpx(url: str) -> int:
    import httpx

    total = 0
    with httpx.Client(timeout=120) as client, client.stream(
        "POST", url + "/v1/init", content=b"{}"
    ) as response:
        for piece in response.iter_raw(SEND_CHUNK):
            total += len(piece)
    return total


def measure(name: str, run: Callable[[], int], runs: int,
            cleanup: Callable[[], None] = lambda: None) -> float:
    """Median GB/s of ``run`` (which returns the bytes it received) after one untimed
    warm-up run; ``cleanup`` runs between runs, untimed."""
    run()
    cleanup()
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        nbytes = run()
        rates.append(nbytes / (time.perf_counter() - start) / 1e9)
        cleanup()
    median = statistics.median(rates)
    print(f"{name:44s} median {median:5.2f} GB/s   (min {min(rates):.2f}, "
          f"max {max(rates):.2f}, {runs} runs)", flush=True)
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="file size in GiB")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="exit 1 below 2 GB/s")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw transports")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    nbytes = int(args.gib * (1 << 30)) >> 20 << 20
    if args.serve:
        serve(args.serve, nbytes)
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from weightinit.service.client.client import Client

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port),
                               "--gib", str(args.gib)])
    url = f"http://127.0.0.1:{port}"
    spec = {"seed": 0, "layers": []}
    try:
        wait_ready(port)
        print(f"{nbytes / (1 << 30):.2f} GiB body from a local uvicorn (subprocess)")
        if not args.no_raw:
            measure("raw httpx iter_raw", lambda: raw_httpx(url), min(args.runs, 3))
            measure("raw urllib3 readinto", lambda: raw_urllib3(url), args.runs)
            measure("raw http.client readinto", lambda: raw_http_client(url), args.runs)
            measure("raw http.client readinto -> fresh memory",
                    lambda: raw_http_client(url, fresh_memory=True), args.runs)
        with tempfile.TemporaryDirectory() as directory, Client(url) as client:
            target = Path(directory) / "model.safetensors"

            def remove() -> None:  # freeing a file's blocks is the filesystem's cost
                target.unlink(missing_ok=True)

            def to_file(sha256: bool) -> int:
                return client.init(spec, target, sha256=sha256).bytes

            def to_arrays() -> int:
                return sum(a.nbytes for a in client.init(spec).values())

            def with_report() -> int:
                info, _ = client.init_with_report(spec, target)
                return info.bytes

            to_disk = measure("Client.init -> file", lambda: to_file(False), args.runs,
                              remove)
            measure("Client.init -> file, with its sha256", lambda: to_file(True),
                    args.runs, remove)
            measure("Client.init_with_report -> file (multipart)", with_report, args.runs,
                    remove)
            measure("Client.init -> numpy arrays", to_arrays, args.runs)
    finally:
        server.terminate()
        server.wait(timeout=30)
    verdict = "meets" if to_disk >= TARGET_GB_S else "is BELOW"
    print(f"downloading a file through the client: {to_disk:.2f} GB/s, {verdict} the "
          f"{TARGET_GB_S} GB/s target")
    return 1 if args.check and to_disk < TARGET_GB_S else 0


if __name__ == "__main__":
    sys.exit(main())
