"""The benchmark harness keeps working: ``benchmarks/run.py --quick`` runs every side.

No timing is asserted (the benchmark is the judge of speed, not the test suite); this only
checks that the one command runs end to end on small sizes and prints its table.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_quick_benchmark_runs_every_side_and_prints_the_table() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=230,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for heading in ("### End to end, seconds per file", "### Limits", "### Memory",
                    "### Latency", "### Scaling and the cost of statistics", "### Targets"):
        assert heading in result.stdout
    assert "| HTTP end to end vs torch, Llama 1B bf16 |" in result.stdout
    assert "n/a" not in result.stdout.split("### Targets")[1]  # every target was measured


@pytest.mark.timeout(600)
def test_quick_hf_route_runs_every_side_and_prints_the_table() -> None:
    """``benchmarks/hf_route.py --quick``: the small Llama through from_config,
    ``weightinit.hf.from_config``, the HTTP route (overlapped and serial) and the
    ``pretrained`` CLI, each loaded into a model."""
    pytest.importorskip("transformers")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "hf_route.py"), "--quick", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=580,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "first trace" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert {row.split("|")[1].strip() for row in rows[1:]} == {
        "from_config", "weightinit_from_config", "http", "http_serial", "cli"}
