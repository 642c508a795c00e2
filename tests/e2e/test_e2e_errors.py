"""Every class of bad input, through a real socket: its status, error code and ``loc``.

No bad request ever gets a 200 (and so never a truncated one) or a 500.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import httpx
import pytest
from e2e_helpers import RunningServer

GOOD = {
    "seed": 1,
    "convention": "torch",
    "layers": [
        {"type": "linear", "name": "fc1", "in_features": 8, "out_features": 4},
        {"type": "linear", "name": "fc2", "in_features": 4, "out_features": 2},
    ],
}


def changed(edit: Callable[[dict], object]) -> bytes:
    spec = copy.deepcopy(GOOD)
    edit(spec)
    return json.dumps(spec).encode()


def nested_repeats(depth: int) -> list[dict]:
    layer: dict = {"type": "linear", "name": "l", "in_features": 2, "out_features": 2}
    for _ in range(depth):
        layer = {"type": "repeat", "name": "r", "count": 2, "layers": [layer]}
    return [layer]


def layer0(**fields: object) -> Callable[[dict], object]:
    return lambda spec: spec["layers"][0].update(fields)


NAN_BODY = (b'{"seed": 1, "layers": [{"type": "tensor", "name": "t", "shape": [2], '
            b'"init": {"name": "normal", "mean": NaN, "std": 1.0}}]}')
# (case, body, status, error code, loc): loc is the path of the field in the body.
CASES = [
    ("unknown layer type", changed(layer0(type="dense2")), 422, "invalid_request",
     ["layers", 0, "type"]),
    ("unknown initializer", changed(layer0(weight_init="glorious_uniform")), 422,
     "invalid_request", ["layers", 0, "weight_init"]),
    # (a size of 0 is an empty tensor, as torch allows: tests/core/layers/test_zero_element)
    ("boolean size", changed(layer0(in_features=True)), 422, "invalid_request",
     ["layers", 0, "in_features"]),
    ("boolean parameter", changed(layer0(weight_init={"name": "kaiming_uniform", "a": True})),
     422, "invalid_request", ["layers", 0, "weight_init", "a"]),
    ("negative size", changed(layer0(out_features=-4)), 422, "invalid_request",
     ["layers", 0, "out_features"]),
    ("non-integer size", changed(layer0(in_features=8.5)), 422, "invalid_request",
     ["layers", 0, "in_features"]),
    ("size as a string", changed(layer0(in_features="8")), 422, "invalid_request",
     ["layers", 0, "in_features"]),
    ("seed above 2**64-1", changed(lambda s: s.update(seed=2**64)), 422, "invalid_request",
     ["seed"]),
    ("negative seed", changed(lambda s: s.update(seed=-1)), 422, "invalid_request", ["seed"]),
    ("missing seed", changed(lambda s: s.pop("seed")), 422, "invalid_request", ["seed"]),
    ("duplicate tensor names", changed(lambda s: s["layers"][1].update(name="fc1",
                                                                       in_features=8)),
     422, "invalid_spec", ["layers", 1, "name"]),
    ("invalid initializer parameter",
     changed(layer0(weight_init={"name": "uniform", "low": 0.0, "high": "x"})), 422,
     "invalid_request", ["layers", 0, "weight_init", "high"]),
    ("missing initializer parameter", changed(layer0(weight_init={"name": "normal"})), 422,
     "invalid_request", ["layers", 0, "weight_init", "std"]),
    ("NaN", NAN_BODY, 422, "invalid_request", ["layers", 0, "init", "mean"]),
    ("Infinity", NAN_BODY.replace(b"NaN", b"Infinity"), 422, "invalid_request",
     ["layers", 0, "init", "mean"]),
    ("overflow to infinity", NAN_BODY.replace(b"NaN", b"1e999"), 422, "invalid_request",
     ["layers", 0, "init", "mean"]),
    ("malformed JSON", b'{"seed": 1, "layers": [', 422, "malformed_json", []),
    ("empty body", b"", 422, "malformed_json", []),
    ("not an object", b"[1, 2]", 422, "invalid_request", []),
    ("misspelt key", changed(lambda s: s.update(sead=1)), 422, "invalid_request", ["sead"]),
    ("select of an unknown name", changed(lambda s: s.update(select=["fc1.weight", "fc9"])),
     422, "invalid_spec", ["select", 1]),
    ("region out of bounds",
     changed(lambda s: s.update(select=[{"name": "fc1.weight", "offset": [0, 5],
                                         "shape": [1, 4]}])), 422,
     "invalid_spec", ["select", 0, "shape", 1]),
    ("region of the wrong rank",
     changed(lambda s: s.update(select=[{"name": "fc1.bias", "offset": [0, 0],
                                         "shape": [1, 1]}])), 422,
     "invalid_spec", ["select", 0, "offset"]),
    ("empty region",
     changed(lambda s: s.update(select=["fc2.bias", {"name": "fc1.weight", "offset": [0, 0],
                                                     "shape": [0, 4]}])), 422,
     "invalid_request", ["select", 1, "shape", 0]),
    ("shard rank out of range",
     changed(lambda s: s.update(shard={"dim": 0, "rank": 4, "world_size": 4})), 422,
     "invalid_spec", ["shard", "rank"]),
    ("shard that does not divide",
     changed(lambda s: s.update(shard={"dim": 0, "rank": 0, "world_size": 3})), 422,
     "invalid_spec", ["shard", "world_size"]),
    ("negative shard dim",
     changed(lambda s: s.update(shard={"dim": -1, "rank": 0, "world_size": 2})), 422,
     "invalid_request", ["shard", "dim"]),
    ("layers and keras_model together",
     changed(lambda s: s.update(keras_model={"class_name": "Sequential"})), 422,
     "invalid_request", []),
    ("repeat nesting too deep", changed(lambda s: s.update(layers=nested_repeats(9))), 422,
     "invalid_spec", ["layers", 0] + ["layers", 0] * 8 + ["layers"]),
    ("parameters over the limit",
     changed(lambda s: s.update(layers=[{"type": "tensor", "name": "huge",
                                         "shape": [200000, 200000], "init": "zeros"}])),
     413, "too_large", ["layers"]),
    ("body over the limit", b'{"seed": 1, "layers": []}' + b" " * (2 << 20), 413,
     "body_too_large", []),
]


@pytest.mark.parametrize("path", ["/v1/init", "/v1/plan"])
@pytest.mark.parametrize(("case", "raw", "status", "code", "loc"), CASES,
                         ids=[case[0] for case in CASES])
def test_bad_input_gets_its_status_and_names_the_field(
    server: RunningServer, path: str, case: str, raw: bytes, status: int, code: str,
    loc: list,
) -> None:
    response = httpx.post(server.base_url + path, content=raw, timeout=60,
                          headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"][0]["loc"] == loc, error
    assert error["message"]


def test_the_good_spec_of_the_table_is_accepted(server: RunningServer) -> None:
    assert httpx.post(server.base_url + "/v1/init", content=json.dumps(GOOD), timeout=60,
                      headers={"content-type": "application/json"}).status_code == 200
