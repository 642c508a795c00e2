#!/usr/bin/env python3
"""HTTP round trip and streaming throughput of a real ``weightinit serve`` on loopback.

Not a test: it prints figures. It starts the server on 127.0.0.1 (a free port), then
measures
  * the whole ``POST /v1/init`` round trip of a small MLP (p50/p99 over 200 requests on
    one keep-alive ``http.client`` connection, body read to the last byte),
  * ``POST /v1/plan`` of a 32-block transformer spec (p50/p99),
  * the throughput of a ~1 GiB float32 stream read with ``readinto`` into one reused
    buffer, and the server's peak RSS (VmHWM) around it.

    python benchmarks/http_roundtrip.py [--requests 200] [--stream-gib 1.0] [--stream-runs 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

SMALL_MLP = {
    "seed": 1234, "convention": "torch", "dtype": "float32",
    "layers": [
        {"type": "linear", "name": "fc1", "in_features": 784, "out_features": 256},
        {"type": "linear", "name": "fc2", "in_features": 256, "out_features": 10},
    ],
}


def transformer_spec(blocks: int = 32, width: int = 1024) -> dict:
    """A Llama-like stack of linears and norm weights (bfloat16)."""
    block = [
        {"type": "tensor", "name": "ln1.weight", "shape": [width], "init": "ones"},
        *({"type": "linear", "name": n, "in_features": width, "out_features": width,
           "bias": False} for n in ("q", "k", "v", "o")),
        {"type": "tensor", "name": "ln2.weight", "shape": [width], "init": "ones"},
        {"type": "linear", "name": "up", "in_features": width, "out_features": 4 * width,
         "bias": False},
        {"type": "linear", "name": "gate", "in_features": width, "out_features": 4 * width,
         "bias": False},
        {"type": "linear", "name": "down", "in_features": 4 * width, "out_features": width,
         "bias": False},
    ]
    normal = {"name": "normal", "mean": 0.0, "std": 0.02}
    return {"seed": 7, "dtype": "bfloat16", "layers": [
        {"type": "tensor", "name": "embed.weight", "shape": [32000, width], "init": normal},
        {"type": "repeat", "name": "blocks", "count": blocks, "layers": block},
        {"type": "tensor", "name": "lm_head.weight", "shape": [32000, width], "init": normal},
    ]}


def big_spec(gib: float) -> dict:
    """float32 uniform tensors of 64 MiB each, ``gib`` GiB in all."""
    count = max(1, round(gib * 16))
    return {"seed": 99, "dtype": "float32", "layers": [
        {"type": "tensor", "name": f"w{i}", "shape": [4096, 4096],
         "init": {"name": "uniform", "low": -0.05, "high": 0.05}} for i in range(count)
    ]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "WEIGHTINIT_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [sys.executable, "-m", "weightinit.service.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port)], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not become healthy within 60 s")


def post(connection: http.client.HTTPConnection, path: str, body: bytes) -> bytes:
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise SystemExit(f"{path}: {response.status} {data[:300]!r}")
    return data


def latency_ms(port: int, path: str, spec: dict, requests: int, fresh: bool = False
               ) -> tuple[float, float]:
    """p50 and p99 in ms; ``fresh`` changes the seed every request (no plan-cache hit)."""
    bodies = [json.dumps({**spec, "seed": spec["seed"] + i} if fresh else spec).encode()
              for i in range(requests + 20)]
    connection = http.client.HTTPConnection("127.0.0.1", port)
    for body in bodies[requests:]:  # warm-up: kernels compiled, connection open
        post(connection, path, body)
    times = []
    for body in bodies[:requests]:
        start = time.perf_counter()
        post(connection, path, body)
        times.append((time.perf_counter() - start) * 1e3)
    connection.close()
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stream_throughput(port: int, gib: float) -> tuple[int, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps(big_spec(gib)).encode()
    buffer = memoryview(bytearray(4 << 20))
    start = time.perf_counter()
    connection.request("POST", "/v1/init", body=body,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    expected = int(response.getheader("Content-Length"))
    received = 0
    while (n := response.readinto(buffer)) > 0:
        received += n
    elapsed = time.perf_counter() - start
    connection.close()
    if received != expected:
        raise SystemExit(f"stream: {received} of {expected} bytes")
    return received, elapsed


def generation_only_gb_s(gib: float) -> float:
    """The same spec generated in this process without HTTP: the server's ceiling."""
    from weightinit.core import ChunkStream, Spec, build_plan

    plan = build_plan(Spec.model_validate(big_spec(gib)))
    for _ in ChunkStream(plan):  # warm-up
        break
    start = time.perf_counter()
    generated = sum(chunk.data.nbytes for chunk in ChunkStream(plan, window=4))
    return generated / (time.perf_counter() - start) / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--stream-gib", type=float, default=1.0)
    parser.add_argument("--stream-runs", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    try:
        for fresh, label in ((False, "same request"), (True, "new seed each time")):
            p50, p99 = latency_ms(port, "/v1/init", SMALL_MLP, args.requests, fresh)
            print(f"small MLP /v1/init round trip ({label}): p50 {p50:.2f} ms, "
                  f"p99 {p99:.2f} ms ({args.requests} requests, keep-alive, 815 kB body)")
        for fresh, label in ((False, "same request"), (True, "new seed each time")):
            p50, p99 = latency_ms(port, "/v1/plan", transformer_spec(), args.requests, fresh)
            print(f"32-block transformer /v1/plan ({label}): p50 {p50:.2f} ms, "
                  f"p99 {p99:.2f} ms")
        rss_before = peak_rss_mib(server.pid)
        rates = []
        for _ in range(args.stream_runs):
            received, elapsed = stream_throughput(port, args.stream_gib)
            rates.append(received / elapsed / 1e9)
        print(f"float32 stream of {received / 1e9:.2f} GB, readinto a reused buffer: "
              f"median {statistics.median(rates):.2f} GB/s, best {max(rates):.2f} GB/s "
              f"({args.stream_runs} runs); server peak RSS {rss_before:.0f} MiB before, "
              f"{peak_rss_mib(server.pid):.0f} MiB after")
    finally:
        server.terminate()
        server.wait(timeout=60)
    ceiling = generation_only_gb_s(args.stream_gib)
    print(f"same spec generated in-process without HTTP: {ceiling:.2f} GB/s "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
