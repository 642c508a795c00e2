"""Resource-exhaustion bodies against the real server: each is refused early (413/422,
before any generation) and costs the server little memory, which keeps serving.

The server's peak RSS (VmHWM) is reset before each body and read after its answer, so
the bound is on what that one request cost at its worst, not on what is left after it.
"""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from e2e_helpers import RunningServer
from fault_helpers import MIB, SMALL, file_sha256, proc_status, reset_peak_rss


def _repeat(count: int, layers: list, name: str = "r") -> dict:
    return {"type": "repeat", "name": name, "count": count, "layers": layers}


def _tensor(name: str, shape: list, init: object = "zeros") -> dict:
    return {"type": "tensor", "name": name, "shape": shape, "init": init}


def _spec(layers: object, **extra: object) -> bytes:
    body = {"seed": 1, "layers": layers, **extra}
    return json.dumps(body, separators=(",", ":")).encode()


def _nested_repeats(levels: int, count: int) -> list:
    inner: list = [{"type": "linear", "name": "l", "in_features": 2, "out_features": 2}]
    for level in range(levels):
        inner = [_repeat(count, inner, f"r{level}")]
    return inner


LONG = "n" * 256  # the longest layer name
KERAS_DEEP = b'{"seed": 1, "convention": "keras", "keras_model": ' + b'{"a": ' * 50_000 + b"1" \
    + b"}" * 50_000 + b"}"
KERAS_HUGE = json.dumps({"seed": 1, "convention": "keras", "keras_model": {
    "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 10**7], "name": "in"}},
        {"class_name": "Dense", "config": {"units": 10**7, "name": "d"}}]}}}).encode()

# (case, body, status, error code): every one is answered before generation starts.
CASES = [
    ("100k nested lists", b"[" * 100_000 + b"]" * 100_000, 422, "malformed_json"),
    ("100k nested objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 422,
     "malformed_json"),
    ("50k nested objects in keras_model", KERAS_DEEP, 422, "malformed_json"),
    ("500k layers that are numbers", _spec([1] * 500_000), 422, "invalid_request"),
    ("250k empty layers", _spec([{}] * 250_000), 422, "invalid_request"),
    ("250k empty select names", _spec([_tensor("t", [1])], select=[""] * 250_000), 422,
     "invalid_request"),
    ("a shape of 200k dims", _spec([_tensor("t", [1] * 200_000)]), 422, "invalid_request"),
    ("a normalized_shape of 100k dims", _spec([_repeat(500, [
        {"type": "layer_norm", "name": "ln", "normalized_shape": [1] * 100_000}])]), 422,
     "invalid_request"),
    ("a seed of 500k digits", b'{"seed": ' + b"9" * 500_000 + b', "layers": []}', 422,
     "malformed_json"),
    ("repeat count 10**18", _spec([_repeat(10**18, _nested_repeats(0, 1))]), 413,
     "too_large"),
    ("repeat count 2**70", _spec([_repeat(2**70, _nested_repeats(0, 1))]), 413, "too_large"),
    ("7 nested repeats of 1000", _spec(_nested_repeats(7, 1000)), 413, "too_large"),
    ("shape product 2**80", _spec([_tensor("t", [2**40, 2**40])]), 413, "too_large"),
    ("shape product over int64", _spec([_tensor("t", [2**63 - 1, 2])]), 413, "too_large"),
    ("a 2**64 dim", _spec([_tensor("t", [2**64])]), 413, "too_large"),
    ("linear of 2**62 x 2**62", _spec([{"type": "linear", "name": "l", "in_features": 2**62,
                                         "out_features": 2**62}]), 413, "too_large"),
    ("keras Dense of 10**14 weights", KERAS_HUGE, 413, "too_large"),
    ("100 001 tiny tensors", _spec([_repeat(100_001, [_tensor("t", [1])])]), 413, "too_large"),
    ("an lstm of 10**9 stacked layers", _spec([{"type": "lstm", "name": "rnn", "input_size": 2,
                                                "hidden_size": 2, "num_layers": 10**9}]), 413,
     "too_large"),
    ("a bidirectional gru of 10**9 stacked layers", _spec([{
        "type": "gru", "name": "rnn", "input_size": 2, "hidden_size": 2, "num_layers": 10**9,
        "bidirectional": True}]), 413, "too_large"),
    ("a tensor name of 900 kB", _spec([_tensor("x" * 900_000, [1])]), 422, "invalid_request"),
    ("a select name of 900 kB", _spec([_tensor("t", [1])], select=["x" * 900_000]), 422,
     "invalid_request"),
    ("100k names of 520 bytes: a 170 MB header",
     _spec([_repeat(100_000, [_tensor(LONG, [1])], LONG)]), 413, "too_large"),
    ("body of 2 MiB", _spec([]) + b" " * (2 * MIB), 413, "body_too_large"),
]
# A refused request parses at most a 1 MiB body and builds one error: 64 MiB is room for
# the parsed body and allocator slack, far below what expanding any of these would take
# (the long names alone: 600+ MiB before they were refused up front).
REFUSAL_RSS_BYTES = 64 * MIB


@pytest.mark.parametrize("path", ["/v1/plan", "/v1/init"])
@pytest.mark.parametrize(("case", "raw", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_resource_exhaustion_bodies_are_refused_early_with_little_memory(
    server: RunningServer, path: str, case: str, raw: bytes, status: int, code: str,
) -> None:
    pid = server.process.pid
    started = server.metric("weightinit_streams_started_total", endpoint="init")
    baseline = proc_status(pid)["VmRSS"]
    reset_peak_rss(pid)
    response = httpx.post(server.base_url + path, content=raw, timeout=120,
                          headers={"content-type": "application/json"})
    peak = proc_status(pid)["VmHWM"]
    print(f"figures: {case} -> {path}: {response.status_code}, peak RSS "
          f"+{max(0, peak - baseline) / MIB:.1f} MiB")
    assert response.status_code == status, response.text[:500]
    assert response.json()["error"]["code"] == code
    assert len(response.content) < 64 << 10  # one error, not one per bad item
    assert server.metric("weightinit_streams_started_total", endpoint="init") == started
    assert peak - baseline < REFUSAL_RSS_BYTES, f"{case}: {(peak - baseline) / MIB:.0f} MiB"


def test_thousands_of_tiny_tensors_within_the_limits_are_served(server: RunningServer) -> None:
    spec = {"seed": 4, "layers": [_tensor(f"t{i}", [3]) for i in range(5_000)]}
    response = httpx.post(server.base_url + "/v1/init", json=spec, timeout=120)
    assert response.status_code == 200
    assert int(response.headers["x-weightinit-tensors"]) == 5_000


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/v1/plan", "/v1/init"])
def test_the_largest_tensor_count_allowed_costs_bounded_memory(server: RunningServer,
                                                               path: str) -> None:
    pid = server.process.pid
    baseline = proc_status(pid)["VmRSS"]
    reset_peak_rss(pid)
    raw = _spec([_repeat(50_000, [{"type": "linear", "name": "l", "in_features": 2,
                                   "out_features": 2}])])  # 100 000 tensors: the limit
    response = httpx.post(server.base_url + path, content=raw, timeout=300,
                          headers={"content-type": "application/json"})
    assert response.status_code == 200
    peak = proc_status(pid)["VmHWM"]
    print(f"figures: 100 000 tensors via {path}: peak RSS +{(peak - baseline) / MIB:.0f} MiB")
    # Planning costs about 2 KiB per tensor, the header about 250 bytes, the plan JSON
    # about 400: 512 MiB is the memory target of a stream (docs/reliability.md).
    assert peak - baseline < 512 * MIB
    small = httpx.post(server.base_url + "/v1/init", json=SMALL, timeout=60)
    assert small.status_code == 200
    assert hashlib.sha256(small.content).hexdigest() == file_sha256(SMALL)
