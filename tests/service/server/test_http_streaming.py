"""The streamed response at the ASGI level: disconnects stop generation, memory is bounded."""

from __future__ import annotations

import asyncio
import json

from live_server import metric
from weightinit.service.server.app import create_app
from weightinit.service.server.settings import Settings

CHUNK_BYTES = 256 << 10  # not coalesced: one chunk per body message
# 64 MiB of float32 in 256 KiB chunks: 256 chunks if it ran to the end.
BIG = {"seed": 5, "layers": [{"type": "tensor", "name": "w", "shape": [4096, 4096],
                              "init": {"name": "uniform", "low": -1.0, "high": 1.0}}]}
TOTAL_CHUNKS = 4096 * 4096 * 4 // CHUNK_BYTES


def scope_for(path: str) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "",
            "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


async def run_until_disconnect(path: str, bodies_before_leaving: int) -> tuple[int, object]:
    """Drive the app directly; the client leaves after some body messages."""
    app = create_app(Settings(chunk_bytes=CHUNK_BYTES, stream_window=2))
    gone = asyncio.Event()
    messages = [{"type": "http.request", "body": json.dumps(BIG).encode(), "more_body": False}]
    bodies = 0

    async def receive() -> dict:
        if messages:
            return messages.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal bodies
        if message["type"] == "http.response.body":
            bodies += 1
            if bodies >= bodies_before_leaving:
                gone.set()
        await asyncio.sleep(0)

    if bodies_before_leaving == 0:
        gone.set()
    await app(scope_for(path), receive, send)
    return bodies, app


def test_client_disconnect_stops_the_stream_within_a_window() -> None:
    bodies, app = asyncio.run(run_until_disconnect("/v1/init", 5))
    text = app.state.services.metrics.exposition().decode()
    assert metric(text, "weightinit_streams_aborted_total", endpoint="init") == 1
    assert metric(text, "weightinit_streams_completed_total", endpoint="init") == 0
    # Sent: 5 bodies; generated at most those plus the window (2) and the one in hand.
    assert metric(text, "weightinit_chunks_generated_total") <= 5 + 2 + 1 < TOTAL_CHUNKS
    assert metric(text, "weightinit_streams_in_flight") == 0
    assert bodies <= 6


def test_report_of_a_client_that_left_stops_generating() -> None:
    _, app = asyncio.run(run_until_disconnect("/v1/report", 0))
    text = app.state.services.metrics.exposition().decode()
    assert metric(text, "weightinit_streams_aborted_total", endpoint="report") == 1
    assert metric(text, "weightinit_chunks_generated_total") < TOTAL_CHUNKS / 2
    assert metric(text, "weightinit_streams_in_flight") == 0


def test_a_stalled_client_holds_at_most_the_window_of_chunks(monkeypatch) -> None:
    import weightinit.core.generate

    submitted = []
    original = weightinit.core.generate.run_task

    def counting_run_task(*args):
        submitted.append(1)
        return original(*args)

    monkeypatch.setattr(weightinit.core.generate, "run_task", counting_run_task)
    window = 3

    async def scenario() -> int:
        app = create_app(Settings(chunk_bytes=CHUNK_BYTES, stream_window=window))
        request = [{"type": "http.request", "body": json.dumps(BIG).encode(),
                    "more_body": False}]
        stalled = asyncio.Event()
        never = asyncio.Event()

        async def receive() -> dict:
            if request:
                return request.pop()
            await never.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body":
                stalled.set()
                await never.wait()  # the socket never drains

        task = asyncio.ensure_future(app(scope_for("/v1/init"), receive, send))
        await stalled.wait()
        for _ in range(20):  # give the generator threads every chance to run ahead
            await asyncio.sleep(0.01)
        text = app.state.services.metrics.exposition().decode()
        task.cancel()
        return int(metric(text, "weightinit_chunks_generated_total"))

    taken = asyncio.run(scenario())
    # The stream took ``taken`` chunks and keeps at most ``window`` more submitted, so the
    # server holds (window + taken) * chunk_bytes at most, however long the client stalls.
    assert taken <= 2
    assert len(submitted) <= taken + window


def test_a_client_that_leaves_while_uploading_is_not_a_server_error() -> None:
    """A body cut short by a disconnect is the client's doing: 499, never a 5xx."""

    async def scenario() -> tuple[list[int], object]:
        app = create_app(Settings())
        messages = [{"type": "http.request", "body": b'{"seed": 1, ', "more_body": True},
                    {"type": "http.disconnect"}]
        statuses: list[int] = []

        async def receive() -> dict:
            return messages.pop(0)

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope_for("/v1/plan"), receive, send)
        return statuses, app

    statuses, app = asyncio.run(scenario())
    assert statuses == [499]
    text = app.state.services.metrics.exposition().decode()
    assert metric(text, "weightinit_http_requests_total", status="499") == 1
