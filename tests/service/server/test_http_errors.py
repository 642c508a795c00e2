"""Bad requests get one JSON error format naming the field, and never a 500.

The full table of bad inputs runs against a real server in ``tests/e2e``; these tests
check the error format itself, the limits and the corners of reading a body.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from http_helpers import MLP, body, client, error_of, mlp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

APP = client()


def test_schema_error_names_the_field_without_union_tags() -> None:
    spec = mlp()
    spec["layers"][0]["in_features"] = -1
    response = APP.post("/v1/plan", content=body(spec))
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["details"][0]["loc"] == ["layers", 0, "in_features"]
    assert error["message"].startswith("layers.0.in_features: ")


def test_unknown_layer_type_points_at_the_type_key() -> None:
    spec = mlp()
    spec["layers"][1]["type"] = "lnear"
    error = error_of(APP.post("/v1/init", content=body(spec)))
    assert error["details"][0]["loc"] == ["layers", 1, "type"]


def test_initializer_parameter_loc_follows_the_body() -> None:
    spec = mlp()
    spec["layers"][0]["weight_init"] = {"name": "normal", "mean": 0.0, "std": -1.0}
    error = error_of(APP.post("/v1/plan", content=body(spec)))
    assert error["details"][0]["loc"] == ["layers", 0, "weight_init", "std"]


def test_malformed_json_is_422_with_its_own_code() -> None:
    response = APP.post("/v1/init", content=b'{"seed": 1, "layers": [')
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "malformed_json"
    assert error["details"][0]["loc"] == []
    assert "line 1" in error["details"][0]["msg"]


def test_semantic_error_from_the_engine_uses_the_same_format() -> None:
    spec = mlp()
    spec["layers"][1]["name"] = "fc1"
    response = APP.post("/v1/init", content=body(spec))
    assert response.status_code == 422
    assert error_of(response)["details"][0]["loc"] == ["layers", 1, "name"]


def test_body_over_the_limit_is_413_from_content_length() -> None:
    small = client(max_body_bytes=200)
    response = small.post("/v1/plan", content=body(MLP) + b" " * 200)
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"
    assert response.headers["connection"] == "close"


def test_chunked_body_over_the_limit_is_413_while_reading() -> None:
    small = client(max_body_bytes=200)
    pieces = [body(MLP)[:100], b" " * 150, body(MLP)[100:]]
    response = small.post("/v1/plan", content=iter(pieces))  # no Content-Length
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"


def test_parameters_over_the_limit_is_413_before_generating() -> None:
    limited = client(max_parameters=1000)
    response = limited.post("/v1/init", content=body(MLP))
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "too_large"
    assert error["details"][0]["loc"] == ["layers"]
    assert "streams_started_total{" not in limited.get("/metrics").text


def test_tensors_over_the_limit_is_413() -> None:
    response = client(max_tensors=3).post("/v1/plan", content=body(MLP))
    assert response.status_code == 413


def test_nesting_over_the_depth_limit_is_422_at_the_deepest_layers() -> None:
    inner = {"type": "linear", "name": "l", "in_features": 2, "out_features": 2}
    for _ in range(3):
        inner = {"type": "repeat", "name": "r", "count": 1, "layers": [inner]}
    response = client(max_depth=2).post("/v1/plan", content=body(mlp(layers=[inner])))
    assert response.status_code == 422
    loc = error_of(response)["details"][0]["loc"]
    assert loc[:2] == ["layers", 0] and loc[-1] == "layers"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonx"])
def test_post_bodies_must_say_application_json(content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    for path in ("/v1/plan", "/v1/init", "/v1/report", "/v1/diagnose"):
        response = TestClient(APP.app).post(path, content=body(MLP), headers=headers)
        assert response.status_code == 415, path
        error = error_of(response)
        assert error["code"] == "unsupported_media_type"
        assert "Content-Type: application/json" in error["message"]


def test_application_json_with_parameters_is_json() -> None:
    response = APP.post("/v1/plan", content=body(MLP),
                        headers={"content-type": "Application/JSON; charset=utf-8"})
    assert response.status_code == 200


def test_unknown_route_and_wrong_method_use_the_error_format() -> None:
    missing = APP.get("/v2/init")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    wrong = APP.get("/v1/init")
    assert wrong.status_code == 405 and error_of(wrong)["code"] == "method_not_allowed"
    assert wrong.headers["allow"] == "POST"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
_layer_keys = st.sampled_from(
    ["type", "name", "in_features", "out_features", "weight_init", "bias", "shape", "init",
     "count", "layers", "kernel_size", "in_channels", "dtype"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    top=st.dictionaries(st.sampled_from(["seed", "dtype", "convention", "select", "shard",
                                         "layers", "keras_model", "algorithm"]),
                        _json_values, max_size=4),
    layer=st.dictionaries(_layer_keys, _json_values, max_size=5),
)
def test_arbitrary_json_never_gets_a_500(top: dict, layer: dict) -> None:
    spec = mlp()
    spec["layers"].append(layer)
    spec.update(top)
    # NaN and infinities are written as NaN/Infinity (not JSON): a 422, never a 500.
    response = APP.post("/v1/plan", content=json.dumps(spec).encode())
    assert response.status_code in (200, 413, 422), response.text
    if response.status_code != 200:
        error_of(response)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=64))
def test_arbitrary_bytes_never_get_a_500(raw: bytes) -> None:
    response = APP.post("/v1/init", content=raw)
    assert response.status_code == 422
    assert error_of(response)["details"]


def test_deeply_nested_json_is_a_422_not_a_500() -> None:
    for raw in (b"[" * 100_000 + b"]" * 100_000,
                b'{"seed": 1, "layers": ' + b"[" * 5000 + b"]" * 5000 + b"}"):
        response = APP.post("/v1/plan", content=raw)
        assert response.status_code == 422
        assert error_of(response)["code"] == "malformed_json"


def test_boolean_for_a_number_is_422_naming_the_field() -> None:
    spec = mlp()
    spec["layers"][0]["weight_init"] = {"name": "kaiming_uniform", "a": True}
    response = APP.post("/v1/plan", content=body(spec))
    assert response.status_code == 422
    detail = error_of(response)["details"][0]
    assert detail["loc"] == ["layers", 0, "weight_init", "a"]
    assert "boolean" in detail["msg"]


def test_unknown_initializer_over_http_suggests_the_name() -> None:
    spec = mlp()
    spec["layers"][0]["weight_init"] = "kaiming_unifrom"
    error = error_of(APP.post("/v1/plan", content=body(spec)))
    assert error["details"][0]["loc"] == ["layers", 0, "weight_init"]
    assert "(did you mean 'kaiming_uniform'?)" in error["message"]
    assert "Input tag" not in error["message"]


def test_empty_body_says_the_spec_must_be_sent_as_json() -> None:
    for path in ("/v1/init", "/v1/plan", "/v1/report"):
        error = error_of(APP.post(path, content=b""))
        assert error["message"].startswith("empty body: the body must be the JSON spec")
        assert "Content-Type: application/json" in error["message"]


def test_a_form_upload_labelled_json_says_how_to_send_the_spec() -> None:
    form = b'--boundary\r\nContent-Disposition: form-data; name="spec"\r\n\r\n{}\r\n--boundary--'
    for raw in (form, b"spec=%7B%7D"):
        error = error_of(APP.post("/v1/plan", content=raw))
        assert error["code"] == "malformed_json"
        assert error["message"].startswith("the body looks like a form upload, not JSON")
        assert "-d @spec.json" in error["message"]
