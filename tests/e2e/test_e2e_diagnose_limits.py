"""``/v1/diagnose`` is bounded before any work: the requests that took gigabytes are
refused at once naming ``batch``, and the largest requests the default limits allow stay
within the memory budget (peak RSS above idle under 256 MiB, read from VmHWM).
"""

from __future__ import annotations

import time

import httpx
import pytest
from e2e_helpers import RunningServer
from fault_helpers import MIB, proc_status, reset_peak_rss

BUDGET_BYTES = 256 * MIB


def linear(name: str, fan_in: int, fan_out: int, bias: bool = True) -> dict:
    return {"type": "linear", "name": name, "in_features": fan_in, "out_features": fan_out,
            "bias": bias}


def deep(depth: int, width: int, bias: bool = True) -> list[dict]:
    return [{"type": "repeat", "name": "r", "count": depth, "layers": [
        linear("l", width, width, bias)]}]


# Both took tens of seconds and over 2 GB before the limits.
REFUSED = [
    ("1 -> 250 000 -> 1 at batch 256", {"spec": {"seed": 1, "layers": [
        linear("a", 1, 250_000), linear("b", 250_000, 1)]}}),
    ("4096 layers of 31x31 at batch 2048",
     {"spec": {"seed": 1, "layers": deep(4096, 31, bias=False)}, "batch": 2048}),
]

# The largest the default limits allow, each at a different limit.
ALLOWED = [
    ("2000x2000 (4M parameters) at batch 500 (the work limit)",
     {"spec": {"seed": 1, "layers": [linear("a", 2000, 2000, bias=False)]}, "batch": 500}),
    ("conv 64->64, 31x31 kernel, at batch 64 (widest inputs)",
     {"spec": {"seed": 1, "layers": [{"type": "conv2d", "name": "c", "in_channels": 64,
                                      "out_channels": 64, "kernel_size": 31}]},
      "batch": 64}),
    ("8 layers of 216 at batch 2048 (activations of every layer)",
     {"spec": {"seed": 1, "layers": deep(8, 216)}, "batch": 2048}),
    ("2048 layers with bias (4096 tensors), 64 histograms of 200 bins",
     {"spec": {"seed": 1, "layers": deep(2048, 43)}, "batch": 16, "bins": 200}),
]


@pytest.mark.parametrize(("case", "body"), REFUSED, ids=[c for c, _ in REFUSED])
def test_hostile_diagnose_requests_are_refused_before_any_work(
    server: RunningServer, case: str, body: dict
) -> None:
    started = time.monotonic()
    response = httpx.post(server.base_url + "/v1/diagnose", json=body, timeout=120)
    elapsed = time.monotonic() - started
    print(f"figures: {case}: {response.status_code} in {elapsed * 1e3:.0f} ms")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large" and error["details"][0]["loc"] == ["batch"]


def test_the_largest_allowed_diagnose_requests_stay_within_the_memory_budget(
    server: RunningServer,
) -> None:
    pid = server.process.pid
    worst = 0
    for case, body in ALLOWED:
        idle = proc_status(pid)["VmRSS"]
        reset_peak_rss(pid)
        started = time.monotonic()
        response = httpx.post(server.base_url + "/v1/diagnose", json=body, timeout=300)
        elapsed = time.monotonic() - started
        above = proc_status(pid)["VmHWM"] - idle
        worst = max(worst, above)
        print(f"figures: diagnose {case}: {response.status_code}, {elapsed:.1f} s, "
              f"peak RSS +{above / MIB:.0f} MiB above idle ({idle / MIB:.0f} MiB)")
        assert response.status_code == 200, response.text[:300]
    assert worst < BUDGET_BYTES
