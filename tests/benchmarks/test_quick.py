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
