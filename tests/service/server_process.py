"""Servers for the client tests: the real ``weightinit serve`` as a subprocess, and tiny
ASGI stubs (in a thread) for behaviour a real server will not show on demand (503s,
truncated bodies, wrong bytes). Every address is 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT_S = 120.0  # a liveness bound (imports on a busy 2-core machine), not a target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@dataclass
class ServerProcess:
    """A running ``weightinit serve``; ``url`` is its base URL."""

    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_weightinit(**settings: str) -> ServerProcess:
    """``weightinit serve`` on a free loopback port, returned once /healthz answers."""
    port = free_port()
    script = Path(sys.executable).with_name("weightinit")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]
    env = {**os.environ, "WEIGHTINIT_LOG_LEVEL": "warning"}
    env.update({f"WEIGHTINIT_{key.upper()}": value for key, value in settings.items()})
    process = subprocess.Popen([*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
                               env=env)
    server = ServerProcess(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weightinit serve exited with {process.returncode}")
        if _healthy(server.url):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"weightinit serve not healthy within {STARTUP_TIMEOUT_S} s")


Handler = Callable[[dict[str, Any], bytes], "StubAnswer"]


@dataclass
class StubAnswer:
    """What the stub sends: status, headers, body pieces, and whether to cut the
    connection after them (a body shorter than its Content-Length)."""

    status: int
    headers: dict[str, str]
    pieces: list[bytes]
    cut: bool = False


class StubServer:
    """uvicorn in a thread serving ``handler(scope, request_body) -> StubAnswer``; keeps
    the paths it was asked for in ``requests``."""

    def __init__(self, handler: Handler) -> None:
        import uvicorn

        self.handler = handler
        self.requests: list[str] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self._app, host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="off", interface="asgi3")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests.append(scope["path"])
        answer = self.handler(scope, body)
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [(k.lower().encode(), v.encode())
                                for k, v in answer.headers.items()]})
        for piece in answer.pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        if answer.cut:
            raise ConnectionAbortedError("stub: cutting the body short")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def __enter__(self) -> StubServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("stub server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
