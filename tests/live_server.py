"""The real ``weightinit serve`` as a subprocess on 127.0.0.1, for every test that talks
to a live server (end-to-end, client, examples). Every wait is a bounded loop: a
liveness bound for a busy 2-core machine, not a performance assertion.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_TIMEOUT_S = 120.0


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$", line)
        if match and match.group(1) == name:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(match.group(3))
    return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def weightinit_command() -> list[str]:
    """The installed console script next to this Python, else the same CLI via -m."""
    script = Path(sys.executable).with_name("weightinit")
    if script.exists():
        return [str(script)]
    found = shutil.which("weightinit")
    return [found] if found else [sys.executable, "-m", "weightinit.service.cli"]


@dataclass
class RunningServer:
    process: subprocess.Popen
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=120, **kwargs)

    def metrics_text(self) -> str:
        return httpx.get(f"{self.base_url}/metrics", timeout=30).text

    def metric(self, name: str, **labels: str) -> float:
        return metric(self.metrics_text(), name, **labels)

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(workers: int = 1, port: int | None = None, log_path: Path | None = None,
                 **settings: str) -> RunningServer:
    """``weightinit serve`` on loopback (a free port unless ``port`` is given, e.g. to
    restart on the same one); returns once /healthz answers 200. ``log_path`` gets the
    server's stdout and stderr (its log lines)."""
    port = port or free_port()
    env = {**os.environ, "WEIGHTINIT_LOG_LEVEL": "warning"}
    env.update({f"WEIGHTINIT_{k.upper()}": v for k, v in settings.items()})
    output = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115
    process = subprocess.Popen(
        [*weightinit_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)], env=env, stdout=output, stderr=output,
    )
    if output is not None:
        output.close()  # the child has its own copy
    running = RunningServer(process, port)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weightinit serve exited with {process.returncode}")
        try:
            if httpx.get(f"{running.base_url}/healthz", timeout=2).status_code == 200:
                return running
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    running.stop()
    raise RuntimeError(f"weightinit serve not healthy within {STARTUP_TIMEOUT_S} s")
