"""Helpers of the end-to-end tests: the live server (from ``live_server``) and bounded
waiting. Every address is 127.0.0.1; every wait is a bounded loop (a liveness bound, not a
performance assertion).
"""

from __future__ import annotations

import time

from live_server import RunningServer, free_port, start_server, weightinit_command

__all__ = ["RunningServer", "free_port", "start_server", "wait_for", "weightinit_command"]


def wait_for(predicate, timeout_s: float = 60.0, what: str = "condition") -> None:
    """Poll until ``predicate()`` is true (bounded), else fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
