"""The limits the engine and the stream are judged against, for the same number of bytes.

* Raw bits: numpy bit generators' ``random_raw`` on every core (one generator per thread;
  numpy releases the GIL while it fills), SFC64 (numpy's fastest) and Philox (the family
  of weightinit's counter-based stream). Both the bytes-for-bytes rate and the rate per
  64-bit word are kept: weightinit's algorithm v1 draws one 64-bit word per element.
* memcpy: one ``np.copyto`` of a buffer that size (both buffers touched beforehand).
* HTTP ceiling: uvicorn streaming a preallocated buffer of that size (the server of
  ``client_throughput.py``, in its own process) to the same discarding client.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.client_throughput import free_port, wait_ready
from benchmarks.sides import cpu_seconds, fetch

RAW_BLOCK_WORDS = 1 << 17  # 1 MiB per call: call overhead < 1 %, the block stays in L2


def raw_bits(nbytes: int, generator: str = "SFC64", threads: int | None = None
             ) -> dict[str, float]:
    """Seconds for ``threads`` generators to produce ``nbytes`` of raw bits together."""
    threads = threads or os.cpu_count() or 1
    words = -(-nbytes // 8)
    shares = [words // threads + (i < words % threads) for i in range(threads)]

    def work(seed: int, share: int) -> None:
        bits = getattr(np.random, generator)(seed)
        for _ in range(share // RAW_BLOCK_WORDS):
            bits.random_raw(RAW_BLOCK_WORDS)
        if share % RAW_BLOCK_WORDS:
            bits.random_raw(share % RAW_BLOCK_WORDS)

    workers = [threading.Thread(target=work, args=(seed, share))
               for seed, share in enumerate(shares)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"seconds": time.perf_counter() - start, "bytes": nbytes, "words": words,
            "threads": threads}


class MemcpyBuffers:
    """Two buffers of ``nbytes``, every page touched first (allocation is not measured)."""

    def __init__(self, nbytes: int) -> None:
        self.source = np.full(nbytes, 1, dtype=np.uint8)
        self.target = np.full(nbytes, 2, dtype=np.uint8)  # not np.zeros: untouched pages

    def copy(self) -> dict[str, float]:
        start = time.perf_counter()
        np.copyto(self.target, self.source)
        return {"seconds": time.perf_counter() - start, "bytes": self.source.nbytes}


# uvicorn running client_throughput's app, with a chosen protocol, event loop and size of
# each ``send`` (the app sends the body in slices of SEND_CHUNK).
_SERVE = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from benchmarks import client_throughput as ct
ct.SEND_CHUNK = {send_bytes}
uvicorn.run(ct.make_app(ct.safetensors_file({nbytes})), host="127.0.0.1", port={port},
            http={http!r}, loop={loop!r}, log_level="warning")
"""


class CeilingServer:
    """uvicorn serving one preallocated body of about ``nbytes`` (whole MiB).

    ``http`` (httptools or h11), ``loop`` (uvloop or asyncio) and ``send_bytes`` (the size
    of each ASGI body message, hence of each socket write) are uvicorn's choices to
    compare; the defaults are what ``weightinit serve`` runs with (``auto`` picks
    httptools and uvloop when installed).
    """

    def __init__(self, nbytes: int, http: str = "httptools", loop: str = "uvloop",
                 send_bytes: int = 4 << 20) -> None:
        self.port = free_port()
        self.label = f"{http} + {loop}, {send_bytes >> 10} KiB writes"
        self.order = (http != "httptools", loop != "uvloop", send_bytes)
        code = _SERVE.format(root=str(Path(__file__).resolve().parents[1]),
                             send_bytes=send_bytes, nbytes=max(nbytes >> 20, 1) << 20,
                             port=self.port, http=http, loop=loop)
        self.process = subprocess.Popen([sys.executable, "-c", code])
        wait_ready(self.port)

    def stream(self, times: int = 1) -> dict[str, float]:
        """``times`` downloads back to back (CPU time is counted in 10 ms ticks)."""
        before = cpu_seconds(self.process.pid)
        figures = {"bytes": 0, "seconds": 0.0}
        for _ in range(times):
            one = fetch(self.port, b"{}")
            figures["bytes"] += one["bytes"]
            figures["seconds"] += one["seconds"]
        figures["server_cpu_s"] = cpu_seconds(self.process.pid) - before
        figures["order"] = self.order
        return figures

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
