"""``POST /v1/diagnose``, in process."""

from __future__ import annotations

import json

import pytest
from http_helpers import client, error_of

APP = client()
SEED_EXAMPLE = {"seed": 1234, "convention": "torch", "layers": [
    {"type": "linear", "name": "fc1", "in_features": 100, "out_features": 64,
     "weight_init": "glorot_uniform", "bias_init": "zeros"},
    {"type": "linear", "name": "fc2", "in_features": 64, "out_features": 10,
     "weight_init": "glorot_uniform", "bias_init": "zeros"}]}
ACTIVATIONS = {"fc1": "relu", "fc2": "softmax"}


def diagnose(app=APP, **body: object):
    return app.post("/v1/diagnose", json={"spec": SEED_EXAMPLE, **body})


def test_diagnose_returns_variance_table_propagation_and_histograms() -> None:
    response = diagnose(activations=ACTIVATIONS)
    assert response.status_code == 200
    document = response.json()
    propagation = document["propagation"]
    assert propagation["sequential"]
    assert [layer["layer"] for layer in propagation["layers"]] == ["fc1", "fc2"]
    assert [layer["activation"] for layer in propagation["layers"]] == ["relu", "softmax"]
    fc1 = propagation["layers"][0]
    assert fc1["forward"]["analytic"] == pytest.approx(100 * 2 / 164)
    assert fc1["forward"]["measured"] == pytest.approx(fc1["forward"]["analytic"], rel=0.1)
    assert propagation["flags"] == []
    assert set(document["histograms"]) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    assert not document["histograms_truncated"]


def test_observed_variance_equals_the_report_of_the_same_bytes() -> None:
    rows = {row["name"]: row for row in diagnose().json()["tensors"]}
    report = APP.post("/v1/report", json=SEED_EXAMPLE).json()
    for tensor in report["tensors"]:
        assert rows[tensor["name"]]["variance"] == pytest.approx(tensor["variance"], rel=1e-9)
        assert rows[tensor["name"]]["expected_variance"] == tensor["expected_variance"]


def test_one_tensor_histogram_on_request() -> None:
    document = diagnose(tensor="fc2.weight", bins=20).json()
    assert list(document["histograms"]) == ["fc2.weight"]
    assert len(document["histograms"]["fc2.weight"]["counts"]) == 20


def test_select_and_shard_are_ignored_the_whole_model_is_diagnosed() -> None:
    spec = {**SEED_EXAMPLE, "select": ["fc2.weight"], "shard": {"rank": 0, "world_size": 2}}
    document = APP.post("/v1/diagnose", json={"spec": spec}).json()
    assert document["propagation"]["sequential"]
    assert len(document["tensors"]) == 4


def test_non_sequential_model_is_diagnosed_without_propagation() -> None:
    spec = {"seed": 1, "layers": [{"type": "embedding", "name": "emb", "num_embeddings": 50,
                                   "embedding_dim": 8}]}
    document = APP.post("/v1/diagnose", json={"spec": spec}).json()
    assert not document["propagation"]["sequential"] and document["propagation"]["reason"]
    assert "emb.weight" in document["histograms"]


@pytest.mark.parametrize("body, loc", [
    ({"activations": {"fc3": "relu"}}, ["activations", "fc3"]),
    ({"activations": {"fc1": "softmax"}}, ["activations", "fc1"]),
    ({"activations": "swish"}, ["activations"]),
    ({"tensor": "fc9.weight"}, ["tensor"]),
    ({"bins": 1}, ["bins"]),
    ({"unknown": 1}, ["unknown"]),
])
def test_bad_requests_are_422_naming_the_field(body: dict, loc: list) -> None:
    response = diagnose(**body)
    assert response.status_code == 422
    assert error_of(response)["details"][0]["loc"] == loc


def test_spec_errors_are_located_under_spec() -> None:
    spec = json.loads(json.dumps(SEED_EXAMPLE))
    spec["layers"][1]["in_features"] = -1
    response = APP.post("/v1/diagnose", json={"spec": spec})
    assert response.status_code == 422
    assert error_of(response)["details"][0]["loc"] == ["spec", "layers", 1, "in_features"]
    spec["layers"][1]["in_features"] = 64
    spec["layers"][1]["name"] = "fc1"
    response = APP.post("/v1/diagnose", json={"spec": spec})
    assert error_of(response)["details"][0]["loc"][0] == "spec"


def test_models_over_the_parameter_limit_are_413() -> None:
    response = diagnose(client(max_parameters=1000))
    assert response.status_code == 413
    assert error_of(response)["details"][0]["loc"] == ["spec", "layers"]


def test_an_overflowing_model_still_answers_json() -> None:
    spec = {"seed": 0, "layers": [{"type": "repeat", "name": "b", "count": 60, "layers": [
        {"type": "linear", "name": "fc", "in_features": 16, "out_features": 16,
         "weight_init": {"name": "normal", "mean": 0.0, "std": 1000.0}}]}]}
    response = APP.post("/v1/diagnose", json={"spec": spec, "tensor": "b.0.fc.weight"})
    assert response.status_code == 200
    assert response.json()["propagation"]["layers"][-1]["forward"]["measured"] is None


def test_diagnose_needs_the_token_when_auth_is_on_and_the_page_does_not() -> None:
    app = client(api_tokens="secret")
    assert diagnose(app).status_code == 401
    good = app.post("/v1/diagnose", json={"spec": SEED_EXAMPLE},
                    headers={"authorization": "Bearer secret"})
    assert good.status_code == 200
    assert app.get("/ui").status_code == 200


def test_openapi_documents_the_diagnose_body() -> None:
    schema = APP.get("/openapi.json").json()
    body = schema["paths"]["/v1/diagnose"]["post"]["requestBody"]
    properties = body["content"]["application/json"]["schema"]["properties"]
    assert {"spec", "activations", "tensor", "bins", "batch", "probe_seed"} <= set(properties)
    assert properties["spec"]["$ref"] == "#/components/schemas/Spec"
    assert "Spec" in schema["components"]["schemas"]
