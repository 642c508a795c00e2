"""One measurement of each side: the torch peer, weightinit over HTTP, the engine alone.

Every function does one run and returns plain figures (seconds, bytes, MiB), so
``run.py`` can interleave them and take medians. The HTTP client is deliberately the
fast one: ``http.client`` reading with ``readinto`` into one reused buffer (httpx's
streaming read manages about 0.4 GB/s and would measure itself, not the server).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from weightinit.core import ChunkStream, Observer, Plan, write_file
from weightinit.core.safetensors_io.writer import header_bytes, stream_bytes

from benchmarks.http_roundtrip import free_port, start_server

HERE = Path(__file__).resolve().parent
READ_BUFFER_BYTES = 4 << 20
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- processes ---------------------------------------------------------------------------

def remove_file(path: Path) -> None:
    """Delete a written file and flush what the kernel still had to write (untimed), so
    the next measurement does not share the machine with the write-back."""
    path.unlink(missing_ok=True)
    os.sync()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` line of ``/proc/<pid>/status`` (``VmHWM``: peak RSS, ``VmRSS``: now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak_rss(pid: int) -> bool:
    """Reset the process's ``VmHWM`` to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Server:
    """A ``weightinit serve`` on 127.0.0.1 (default settings) for the whole benchmark."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        saved = dict(os.environ)
        os.environ.update(env or {})
        try:
            self.process = start_server(self.port)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- the fast client ---------------------------------------------------------------------

def fetch(port: int, body: bytes, *, path: str = "/v1/init", accept: str | None = None,
          out: BinaryIO | None = None, buffer: memoryview | None = None) -> dict[str, float]:
    """POST ``body`` and read every byte of the answer (into ``out`` when given).

    Returns ``bytes`` received and ``seconds`` from sending the request to the last byte.
    """
    buffer = buffer if buffer is not None else memoryview(bytearray(READ_BUFFER_BYTES))
    headers = {"Content-Type": "application/json"}
    if accept:
        headers["Accept"] = accept
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        start = time.perf_counter()
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status} {response.read(300)!r}")
        expected = response.getheader("Content-Length")
        received = 0
        while count := response.readinto(buffer):
            received += count
            if out is not None:
                out.write(buffer[:count])
        seconds = time.perf_counter() - start
    finally:
        connection.close()
    if expected is not None and received != int(expected):
        raise RuntimeError(f"{path}: {received} of {expected} bytes")
    return {"bytes": received, "seconds": seconds}


def http_stream(server: Server, body: bytes, *, out_path: Path | None = None,
                accept: str | None = None) -> dict[str, float]:
    """One ``/v1/init`` to a discarding client (or to a file), with the server's CPU time."""
    cpu_before = cpu_seconds(server.pid)
    if out_path is None:
        figures = fetch(server.port, body, accept=accept)
    else:
        with open(out_path, "wb", buffering=0) as handle:
            figures = fetch(server.port, body, accept=accept, out=handle)
        remove_file(out_path)
    figures["server_cpu_s"] = cpu_seconds(server.pid) - cpu_before
    return figures


def http_peak_rss(server: Server, body: bytes, poll_s: float = 0.05) -> dict[str, float]:
    """Stream ``body``'s file to a discarding client; the server's peak RSS meanwhile.

    ``VmHWM`` is reset first (so earlier, bigger work does not count); where that is not
    allowed the peak of polled ``VmRSS`` is used instead.
    """
    import threading

    baseline = status_kib(server.pid, "VmRSS")
    resettable = reset_peak_rss(server.pid)
    polled, stop = [baseline], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            polled[0] = max(polled[0], status_kib(server.pid, "VmRSS"))
            time.sleep(poll_s)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        figures = http_stream(server, body)
    finally:
        stop.set()
        poller.join()
    peak = status_kib(server.pid, "VmHWM") if resettable else polled[0]
    figures.update(peak_rss_mib=peak / 1024, idle_rss_mib=baseline / 1024,
                   polled_rss_mib=polled[0] / 1024)
    return figures


# --- the torch peer ----------------------------------------------------------------------

def torch_peer(recipe_path: Path, out_path: Path) -> dict[str, float]:
    """Run ``peer_torch.py`` in a child; its timings and peak RSS (its own ``VmHWM``)."""
    result = subprocess.run([sys.executable, str(HERE / "peer_torch.py"), str(recipe_path),
                             str(out_path)], stdout=subprocess.PIPE, text=True, check=False)
    remove_file(out_path)
    if result.returncode:
        raise RuntimeError(f"torch peer failed with exit code {result.returncode}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["seconds"] = figures.pop("total_s")
    return figures


# --- the engine alone --------------------------------------------------------------------

def engine_file(plan: Plan, out_path: Path) -> dict[str, float]:
    """The library writing the file (``core.write_file``, what ``weightinit init`` does)."""
    start = time.perf_counter()
    write_file(plan, out_path)
    seconds = time.perf_counter() - start
    remove_file(out_path)
    return {"seconds": seconds, "bytes": plan.total_bytes}


def engine_generate(plan: Plan, executor: ThreadPoolExecutor, *, with_stats: bool = False,
                    observe: bool = False, chunk_bytes: int | None = None) -> dict[str, float]:
    """Generate every chunk and drop it: the engine's throughput on ``executor``'s threads.

    ``with_stats`` adds the moments computed in the kernels; ``observe`` the whole report
    path (per-tensor and file sha256 in ``weightinit.core.safetensors_io.writer.Observer``).
    """
    kwargs = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    stream = ChunkStream(plan, with_stats=with_stats, executor=executor, **kwargs)
    start = time.perf_counter()
    if observe:
        for _ in stream_bytes(header_bytes(plan), iter(stream), Observer()):
            pass
    else:
        for _ in stream:
            pass
    return {"seconds": time.perf_counter() - start, "bytes": plan.total_bytes}
