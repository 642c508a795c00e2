"""``benchmarks/load.py`` against the real server: 64 clients mixing small ``/v1/init``,
``/v1/plan`` and large streams; every body is checked against its sha256 and the only
failure allowed is a deliberate 503 with ``Retry-After``.

The default run loads the server for 10 s; ``pytest -m slow`` for the full 60 s. Speed is
printed (``-s``), not asserted: the benchmark reports it, the test guards correctness.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from e2e_helpers import RunningServer
from fault_helpers import CHUNK_BYTES, MIB, STREAM_WINDOW, proc_status

DEFAULT_MAX_STREAMS = 8  # WEIGHTINIT_MAX_CONCURRENT_STREAMS of the server fixture


def load_module() -> ModuleType:
    """``benchmarks/load.py`` (benchmarks are scripts, not a package)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"
    spec = importlib.util.spec_from_file_location("weightinit_benchmarks_load", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("duration_s", [10.0, pytest.param(60.0, marks=pytest.mark.slow)])
def test_64_clients_under_load_get_every_body_intact(server: RunningServer,
                                                     duration_s: float) -> None:
    load = load_module()
    baseline_mib = proc_status(server.process.pid)["VmRSS"] / MIB
    result = load.run_load(server.base_url, server.process.pid, duration_s=duration_s,
                           clients=64, large_clients=4)
    print("figures:", result.summary())
    assert result.errors == 0, result.error_samples  # 503 + Retry-After is not an error
    assert result.bodies_corrupted == 0
    assert all(result.served.get(kind, 0) > 0 for kind in ("init", "plan", "large"))
    assert result.bodies_verified == sum(result.served.values())
    assert result.small_during_large > 0
    # Memory: every stream slot holding its window plus the chunk being sent
    # (8 x 5 x 4 MiB = 160 MiB), and 96 MiB for plans, buffers and allocator slack.
    bound_mib = DEFAULT_MAX_STREAMS * (STREAM_WINDOW + 1) * CHUNK_BYTES / MIB + 96
    assert result.server_max_sampled_rss_mib - baseline_mib < bound_mib
