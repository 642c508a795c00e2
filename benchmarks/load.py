#!/usr/bin/env python3
"""Load test: many clients mixing small ``/v1/init``, ``/v1/plan`` and large streams.

Not a benchmark of speed but of staying correct and available under load, on loopback
only (127.0.0.1), bounded in time and in request count. ``clients`` connections run at
once: ``large_clients`` threads each stream large files in a loop (read with
``readinto``, hashed off the event loop), the others are asyncio coroutines on keep-alive
connections sending small ``/v1/init`` and ``/v1/plan`` requests. Every body is checked:
a file against the sha256 the library computes in this process for the same spec, a plan
against the body the server gave for it before the load started. The only failure
allowed is a deliberate 503 with ``Retry-After`` (capacity); the client then waits
``min(Retry-After, max_backoff_s)`` (a crowd of eager clients, not polite ones).

Reported: requests served, 503s, errors, bodies verified and corrupted, p50/p99 latency
of small requests that ran while a large stream was in flight, and the server's peak RSS
(VmHWM, and the largest VmRSS sampled every 0.25 s during the run) and thread count.

    python benchmarks/load.py [--quick] [--duration-s 60] [--clients 64] [--json OUT]
    python benchmarks/load.py --url http://127.0.0.1:8000 --pid PID   # a running server
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import random
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

MIB = 1 << 20
LOOPBACK = ("127.0.0.1", "localhost", "::1")
REJECTION_CODES = ("at_capacity", "token_at_capacity")


def _linear(name: str, fan_in: int, fan_out: int, **extra: object) -> dict:
    return {"type": "linear", "name": name, "in_features": fan_in, "out_features": fan_out,
            **extra}


def small_specs() -> list[dict]:
    """Small files of several shapes, dtypes and conventions, with select and shard."""
    mlp = [_linear("fc1", 64, 32, weight_init={"name": "kaiming_uniform",
                                               "nonlinearity": "relu"}),
           _linear("fc2", 32, 8, weight_init="glorot_uniform", bias_init="zeros")]
    conv = [{"type": "conv2d", "name": "conv", "in_channels": 3, "out_channels": 16,
             "kernel_size": 3},
            {"type": "batch_norm", "name": "bn", "num_features": 16},
            _linear("head", 16, 10)]
    seq = [{"type": "embedding", "name": "emb", "num_embeddings": 100, "embedding_dim": 32},
           {"type": "layer_norm", "name": "ln", "normalized_shape": 32},
           _linear("out", 32, 100, weight_init={"name": "normal", "mean": 0.0, "std": 0.02})]
    variants = [
        {"layers": mlp},
        {"layers": mlp, "dtype": "bfloat16"},
        {"layers": conv, "convention": "keras"},
        {"layers": conv, "select": ["conv.weight", "head.bias"]},
        {"layers": seq, "shard": {"dim": 0, "rank": 1, "world_size": 2}},
        {"layers": seq, "dtype": "float16"},
    ]
    return [{"seed": seed, **variant} for seed in (1, 2, 3) for variant in variants]


def plan_specs() -> list[dict]:
    """Specs for ``/v1/plan``: a small MLP and a 24-block transformer stack."""
    block = [{"type": "layer_norm", "name": "ln1", "normalized_shape": 512},
             {"type": "multihead_attention", "name": "attn", "embed_dim": 512,
              "num_heads": 8},
             _linear("up", 512, 2048), _linear("down", 2048, 512)]
    return [{"seed": 5, "layers": [_linear("fc1", 784, 256), _linear("fc2", 256, 10)]},
            {"seed": 6, "dtype": "bfloat16",
             "layers": [{"type": "repeat", "name": "blocks", "count": 24, "layers": block}]}]


def large_specs() -> list[dict]:
    """Large files: 64 MiB of float32 uniform, 32 MiB of bfloat16 truncated normals."""
    uniform = {"name": "uniform", "low": -0.05, "high": 0.05}
    normal = {"name": "truncated_normal", "mean": 0.0, "std": 0.02}
    return [
        {"seed": 21, "layers": [{"type": "tensor", "name": f"w{i}", "shape": [1024, 1024],
                                 "init": uniform} for i in range(16)]},
        {"seed": 22, "dtype": "bfloat16",
         "layers": [{"type": "tensor", "name": f"h{i}", "shape": [2048, 1024],
                     "init": normal} for i in range(8)]},
    ]


def expected_file_sha256(spec: dict) -> str:
    """sha256 of the file the library makes for ``spec`` in this process."""
    from weightinit.core import ChunkStream, Spec, build_plan, header_bytes

    plan = build_plan(Spec.model_validate(spec))
    digest = hashlib.sha256(header_bytes(plan))
    for chunk in ChunkStream(plan):
        digest.update(chunk.buffer)
    return digest.hexdigest()


@dataclass
class Request:
    kind: str  # "init" | "plan" | "large"
    path: str
    body: bytes
    expected_sha256: str


@dataclass
class LoadResult:
    """What a run saw; ``ok`` is the verdict."""

    duration_s: float
    clients: int
    large_clients: int
    served: dict[str, int] = field(default_factory=dict)
    rejected_503: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    bodies_verified: int = 0
    bodies_corrupted: int = 0
    bytes_verified: int = 0
    small_p50_ms: float = float("nan")
    small_p99_ms: float = float("nan")
    small_during_large: int = 0
    server_peak_rss_mib: float = float("nan")
    server_max_sampled_rss_mib: float = 0.0
    server_max_threads: int = 0

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.bodies_corrupted == 0

    def summary(self) -> str:
        total = sum(self.served.values())
        return (
            f"{self.clients} clients ({self.large_clients} large), {self.duration_s:.1f} s: "
            f"{total} served {self.served}, {self.rejected_503} x 503 + Retry-After, "
            f"{self.errors} errors, {self.bodies_verified} bodies "
            f"({self.bytes_verified / 1e9:.2f} GB) verified, {self.bodies_corrupted} "
            f"corrupted; small requests during large streams: p50 {self.small_p50_ms:.1f} ms"
            f", p99 {self.small_p99_ms:.1f} ms (n={self.small_during_large}); server peak "
            f"RSS {self.server_peak_rss_mib:.0f} MiB (largest sampled "
            f"{self.server_max_sampled_rss_mib:.0f} MiB), max {self.server_max_threads} threads"
        )


class Tally:
    """Counters shared by the coroutines and the large-stream threads."""

    def __init__(self, result: LoadResult, max_requests: int, deadline: float) -> None:
        self.result = result
        self.max_requests = max_requests
        self.deadline = deadline
        self.large_in_flight = 0
        self.latencies_ms: list[float] = []
        self._lock = threading.Lock()
        self._started = 0

    def next_request(self) -> bool:
        """Whether another request may start (time and count bounds)."""
        with self._lock:
            if time.monotonic() >= self.deadline or self._started >= self.max_requests:
                return False
            self._started += 1
            return True

    def large(self, delta: int) -> None:
        with self._lock:
            self.large_in_flight += delta

    def outcome(self, request: Request, status: int, retry_after: str | None,
                error_code: str | None, digest: str | None, nbytes: int) -> None:
        result = self.result
        with self._lock:
            if status == 200 and digest is not None:
                result.served[request.kind] = result.served.get(request.kind, 0) + 1
                result.bodies_verified += 1
                result.bytes_verified += nbytes
                if digest != request.expected_sha256:
                    result.bodies_corrupted += 1
                    self._error(f"{request.kind} {request.path}: sha256 mismatch")
            elif status == 503 and retry_after and error_code in REJECTION_CODES:
                result.rejected_503 += 1
            else:
                self._error(f"{request.kind} {request.path}: status {status} "
                            f"({error_code}, Retry-After {retry_after})")

    def failure(self, request: Request, error: BaseException) -> None:
        with self._lock:
            self._error(f"{request.kind} {request.path}: {type(error).__name__}: {error}")

    def _error(self, message: str) -> None:
        self.result.errors += 1
        if len(self.result.error_samples) < 20:
            self.result.error_samples.append(message)


def _error_code(status: int, body: bytes) -> str | None:
    if status == 200:
        return None
    try:
        return json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: Request) -> tuple[int, dict[str, str], bytes]:
    """One keep-alive HTTP/1.1 exchange with a ``Content-Length`` response."""
    writer.write(
        f"POST {request.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
        f"\r\nContent-Length: {len(request.body)}\r\n\r\n".encode() + request.body)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


async def small_client(host: str, port: int, requests: list[Request], tally: Tally,
                       seed: int, max_backoff_s: float) -> None:
    """Small requests on one keep-alive connection until the run's bounds are reached."""
    chooser = random.Random(seed)
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while tally.next_request():
        request = chooser.choice(requests)
        try:
            if connection is None:
                connection = await asyncio.open_connection(host, port)
            started = time.perf_counter()
            during_large = tally.large_in_flight > 0
            status, headers, body = await asyncio.wait_for(
                _exchange(*connection, request), timeout=60)
            elapsed_ms = (time.perf_counter() - started) * 1e3
            digest = hashlib.sha256(body).hexdigest() if status == 200 else None
            tally.outcome(request, status, headers.get("retry-after"),
                          _error_code(status, body), digest, len(body))
            if status == 200 and during_large and tally.large_in_flight > 0:
                tally.latencies_ms.append(elapsed_ms)
            if headers.get("connection", "").lower() == "close":
                connection[1].close()
                connection = None
            if status == 503:
                await asyncio.sleep(min(float(headers.get("retry-after", 1)), max_backoff_s))
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError,
                KeyError) as error:
            tally.failure(request, error)
            if connection is not None:
                connection[1].close()
            connection = None
    if connection is not None:
        connection[1].close()


def large_client(host: str, port: int, requests: list[Request], tally: Tally,
                 max_backoff_s: float) -> None:
    """Large streams, one after another, read with ``readinto`` and hashed as they come."""
    buffer = memoryview(bytearray(4 * MIB))
    index = 0
    while tally.next_request():
        request = requests[index % len(requests)]
        index += 1
        connection = http.client.HTTPConnection(host, port, timeout=120)
        tally.large(+1)
        try:
            connection.request("POST", request.path, body=request.body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            if response.status != 200:
                body = response.read()
                retry_after = response.getheader("Retry-After")
                tally.outcome(request, response.status, retry_after,
                              _error_code(response.status, body), None, 0)
                time.sleep(min(float(retry_after or 1), max_backoff_s))
                continue
            digest = hashlib.sha256()
            received = 0
            while count := response.readinto(buffer):
                digest.update(buffer[:count])
                received += count
            if received != int(response.getheader("Content-Length")):
                raise http.client.IncompleteRead(b"", received)
            tally.outcome(request, 200, None, None, digest.hexdigest(), received)
        except (OSError, http.client.HTTPException, ValueError) as error:
            tally.failure(request, error)
        finally:
            tally.large(-1)
            connection.close()


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (KiB) and Threads of a process, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            values[key] = int(value.split()[0])
    return values


def fetch(host: str, port: int, path: str, body: bytes) -> bytes:
    connection = http.client.HTTPConnection(host, port, timeout=120)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {data[:200]!r}")
        return data
    finally:
        connection.close()


def workload(host: str, port: int) -> tuple[list[Request], list[Request]]:
    """Small and large requests with their expected sha256 (library, or a first answer)."""
    small = [Request("init", "/v1/init", json.dumps(s).encode(), expected_file_sha256(s))
             for s in small_specs()]
    for spec in plan_specs():
        body = json.dumps(spec).encode()
        answer = hashlib.sha256(fetch(host, port, "/v1/plan", body)).hexdigest()
        small.append(Request("plan", "/v1/plan", body, answer))
    large = [Request("large", "/v1/init", json.dumps(s).encode(), expected_file_sha256(s))
             for s in large_specs()]
    # The library's sha256 is also what the server reports for the same request.
    report = json.loads(fetch(host, port, "/v1/report", large[0].body))
    if report["file_sha256"] != large[0].expected_sha256:
        raise RuntimeError("the server's /v1/report disagrees with the library")
    return small, large


async def _run(host: str, port: int, pid: int | None, result: LoadResult, tally: Tally,
               small: list[Request], large: list[Request], max_backoff_s: float) -> None:
    threads = [threading.Thread(target=large_client, args=(host, port, large, tally,
                                                           max_backoff_s), daemon=True)
               for _ in range(result.large_clients)]
    for thread in threads:
        thread.start()
    coroutines = [small_client(host, port, small, tally, seed, max_backoff_s)
                  for seed in range(result.clients - result.large_clients)]
    tasks = asyncio.gather(*coroutines)
    while not tasks.done() or any(thread.is_alive() for thread in threads):
        if pid is not None:
            status = proc_status(pid)
            result.server_max_threads = max(result.server_max_threads, status["Threads"])
            result.server_max_sampled_rss_mib = max(result.server_max_sampled_rss_mib,
                                                    status["VmRSS"] / 1024)
        await asyncio.wait([tasks], timeout=0.25)
    await tasks
    for thread in threads:
        await asyncio.to_thread(thread.join, 180)


def run_load(base_url: str, pid: int | None, duration_s: float = 60.0, clients: int = 64,
             large_clients: int = 4, max_requests: int = 2_000_000,
             max_backoff_s: float = 1.0) -> LoadResult:
    """Run the load against a server on loopback; ``pid`` is read for RSS and threads."""
    parts = urlsplit(base_url)
    if parts.hostname not in LOOPBACK:
        raise ValueError(f"load only ever runs against loopback, not {parts.hostname}")
    host, port = parts.hostname, parts.port or 80
    small, large = workload(host, port)
    result = LoadResult(duration_s, clients, large_clients)
    started = time.monotonic()
    tally = Tally(result, max_requests, started + duration_s)
    asyncio.run(_run(host, port, pid, result, tally, small, large, max_backoff_s))
    result.duration_s = time.monotonic() - started
    latencies = sorted(tally.latencies_ms)
    result.small_during_large = len(latencies)
    if latencies:
        result.small_p50_ms = statistics.median(latencies)
        result.small_p99_ms = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    if pid is not None:
        result.server_peak_rss_mib = proc_status(pid)["VmHWM"] / 1024
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running server on loopback (default: start one)")
    parser.add_argument("--pid", type=int, help="that server's process id (for its RSS)")
    parser.add_argument("--quick", action="store_true", help="10 s instead of 60 s")
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--large-clients", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--max-backoff-s", type=float, default=1.0)
    parser.add_argument("--json", type=Path, help="write the result here as JSON")
    args = parser.parse_args()
    duration_s = 10.0 if args.quick else args.duration_s
    server = None
    url, pid = args.url, args.pid
    if url is None:
        sys.path.insert(0, str(Path(__file__).parent))
        from http_roundtrip import free_port, start_server

        port = free_port()
        server = start_server(port)
        url, pid = f"http://127.0.0.1:{port}", server.pid
    try:
        result = run_load(url, pid, duration_s, args.clients, args.large_clients,
                          args.max_requests, args.max_backoff_s)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
    print(result.summary())
    for sample in result.error_samples:
        print("  error:", sample)
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
