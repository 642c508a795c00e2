"""Puts ``tests/`` on the import path (pytest's rootdir-conftest rule), so every test
folder shares ``live_server``; and the one live server that end-to-end, client and
example tests share. ``live_server`` (and httpx) is imported only when a test asks for
the server: the golden tests also run in environments without the test extra
(.ci/numpy-compat.sh)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from live_server import RunningServer


def pytest_configure(config: pytest.Config) -> None:
    """The engine as the entry points configure it, from ``WEIGHTINIT_*`` settings (the
    numpy-compat CI runs the golden tests with ``WEIGHTINIT_DISABLE_NUMBA=1``)."""
    from weightinit.service.server.settings import Settings

    Settings().configure_engine()


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    """A real ``weightinit serve`` on 127.0.0.1 for the session (default settings, auth
    off). Tests that need other settings start their own with ``start_server``."""
    from live_server import start_server

    running = start_server()
    try:
        yield running
    finally:
        running.stop()
