"""``weightinit serve``'s pieces that need no socket: settings errors and the drain logic."""

from __future__ import annotations

import asyncio
import importlib.util
import signal
from pathlib import Path

import pytest
import uvicorn
from weightinit.service.server.capacity import Capacity
from weightinit.service.server.metrics import Metrics
from weightinit.service.server.run import DrainingServer, serve


def draining_server(timeout_s: float = 30.0) -> tuple[DrainingServer, Capacity]:
    capacity = Capacity(4, 4, 5, Metrics())
    config = uvicorn.Config(app=lambda scope, receive, send: None, timeout_graceful_shutdown=30)
    return DrainingServer(config, capacity, timeout_s), capacity


def test_bad_settings_exit_2_before_starting(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("WEIGHTINIT_MAX_BODY_BYTES", "lots")
    assert serve(host="127.0.0.1", port=0) == 2
    assert "WEIGHTINIT_MAX_BODY_BYTES" in capsys.readouterr().err


def test_missing_token_file_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIGHTINIT_API_TOKENS_FILE", "/no/such/tokens/file")
    assert serve(host="127.0.0.1", port=0) == 2


def test_first_sigterm_drains_and_the_server_stops_when_no_stream_is_left() -> None:
    server, capacity = draining_server()
    slot = capacity.acquire(None)
    server.handle_exit(signal.SIGTERM, None)
    assert capacity.draining and not server.should_exit
    assert asyncio.run(server.on_tick(1)) is False  # a stream is still in flight
    slot.release()
    assert asyncio.run(server.on_tick(2)) is True
    assert server.should_exit and server._captured_signals == []  # exits 0, not by signal


def test_drain_deadline_stops_the_server_with_streams_left() -> None:
    server, capacity = draining_server(timeout_s=0)
    capacity.acquire(None)
    server.handle_exit(signal.SIGTERM, None)
    assert asyncio.run(server.on_tick(1)) is True
    assert server.config.timeout_graceful_shutdown == 1


def test_second_sigterm_stops_at_once() -> None:
    server, capacity = draining_server()
    capacity.acquire(None)
    server.handle_exit(signal.SIGTERM, None)
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit


@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba not installed")
def test_a_started_server_has_numba_loaded(server) -> None:
    """The engine loads numba lazily (a small CLI model never pays for it); a server
    loads it while warming up, so no request pays for it."""
    maps = Path(f"/proc/{server.process.pid}/maps").read_text()
    assert "llvmlite" in maps
