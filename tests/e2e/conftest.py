"""A real ``weightinit serve`` on 127.0.0.1 for the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_helpers import RunningServer, start_server


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    """One server for the session (default settings, auth off)."""
    running = start_server()
    try:
        yield running
    finally:
        running.stop()
