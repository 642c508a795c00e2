"""A tiny ASGI stub server (uvicorn in a thread) for the client tests: behaviour a real
server will not show on demand (503s, truncated bodies, wrong bytes). The real server is
``live_server``. Every address is 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from live_server import free_port

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
