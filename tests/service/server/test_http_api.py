"""The routes, in process: plan, init (ETag, multipart), report, catalogue, operations."""

from __future__ import annotations

import hashlib
import json
from email.parser import BytesParser
from email.policy import HTTP

import pytest
from http_helpers import MLP, body, client, error_of, mlp
from live_server import metric
from weightinit.core import REGISTRY

APP = client()


def test_plan_has_the_fields_of_the_design() -> None:
    plan = APP.post("/v1/plan", content=body(MLP)).json()
    for key in ("tensors", "total_parameters", "total_bytes", "spec_sha256", "algorithm"):
        assert key in plan
    tensor = plan["tensors"][0]
    for key in ("name", "layer", "shape", "dtype", "initializer", "fan_in", "fan_out",
                "expected_mean", "expected_variance"):
        assert key in tensor
    assert [t["name"] for t in plan["tensors"]] == ["fc1.weight", "fc1.bias", "fc2.weight",
                                                     "fc2.bias"]
    assert plan["total_parameters"] == 64 * 32 + 32 + 32 * 8 + 8


def test_init_sends_content_length_equal_to_the_plan_file_size() -> None:
    response = APP.post("/v1/init", content=body(MLP))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    plan = APP.post("/v1/plan", content=body(MLP)).json()
    assert int(response.headers["content-length"]) == len(response.content) == plan["file_bytes"]


def test_etag_is_strong_and_a_match_is_304_without_generating() -> None:
    app = client()
    first = app.post("/v1/init", content=body(MLP))
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 66
    for if_none_match in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        again = app.post("/v1/init", content=body(MLP), headers={"if-none-match": if_none_match})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
    text = app.get("/metrics").text
    assert metric(text, "weightinit_streams_started_total", endpoint="init") == 1


def test_etag_depends_on_the_canonical_request_only() -> None:
    def etag(spec: dict) -> str:
        return APP.post("/v1/init", content=body(spec)).headers["etag"]

    base = etag(MLP)
    reordered = json.loads(json.dumps(MLP))
    reordered["layers"][0] = dict(reversed(list(reordered["layers"][0].items())))
    del reordered["convention"]  # the default, spelled or not
    assert etag(reordered) == base
    assert etag(mlp(seed=1235)) != base
    assert etag(mlp(select=["fc1.weight"])) != base
    assert etag(mlp(shard={"dim": 0, "rank": 0, "world_size": 2})) != base


def parse_multipart(response) -> list:
    raw = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode() + response.content
    return list(BytesParser(policy=HTTP).parsebytes(raw).iter_parts())


def test_multipart_has_the_file_then_the_report_with_its_sha256() -> None:
    plain = APP.post("/v1/init", content=body(MLP)).content
    response = APP.post("/v1/init", content=body(MLP), headers={"accept": "multipart/mixed"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=")
    assert response.headers["etag"].startswith("W/")
    file_part, report_part = parse_multipart(response)
    assert file_part.get_content_type() == "application/octet-stream"
    data = file_part.get_payload(decode=True)
    assert data == plain and int(file_part["content-length"]) == len(data)
    report = json.loads(report_part.get_payload(decode=True))
    assert report["file_sha256"] == hashlib.sha256(plain).hexdigest()
    assert {"mean", "variance", "min", "max", "sha256"} <= set(report["tensors"][0])


def test_multipart_boundary_is_random_per_response() -> None:
    def boundary() -> str:
        return APP.post("/v1/init", content=body(MLP), headers={"accept": "multipart/mixed"}
                        ).headers["content-type"]

    assert boundary() != boundary()


def test_report_sha256_equals_the_init_body() -> None:
    report = APP.post("/v1/report", content=body(MLP)).json()
    init = APP.post("/v1/init", content=body(MLP)).content
    assert report["file_sha256"] == hashlib.sha256(init).hexdigest()
    plan = APP.post("/v1/plan", content=body(MLP)).json()
    assert [t["name"] for t in report["tensors"]] == [t["name"] for t in plan["tensors"]]


def test_catalogue_lists_every_registered_initializer() -> None:
    entries = APP.get("/v1/initializers").json()
    assert {e["name"] for e in entries} == set(REGISTRY)
    assert all({"parameters", "formula", "required"} <= set(e) for e in entries)


def test_openapi_describes_the_spec_and_real_examples() -> None:
    schema = APP.get("/openapi.json").json()
    assert "Spec" in schema["components"]["schemas"]
    for path in ("/v1/plan", "/v1/init", "/v1/report"):
        content = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/Spec"}
        assert content["example"]["seed"] == 1234
    plan_example = schema["paths"]["/v1/plan"]["post"]["responses"]["200"]["content"][
        "application/json"]["example"]
    assert plan_example["tensors"][0]["name"] == "fc1.weight"
    assert "multipart/mixed" in schema["paths"]["/v1/init"]["post"]["responses"]["200"][
        "content"]
    docs = APP.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # Its own assets only, no inline script (tests/e2e/test_e2e_protocol.py loads them).
    assert "script-src 'self';" in docs.headers["content-security-policy"]
    assert "https://" not in docs.text and "<script>" not in docs.text


def test_health_and_readiness_then_drain_refuses_new_streams() -> None:
    app = client(retry_after_s=7)
    assert app.get("/healthz").json() == {"status": "ok"}
    assert app.get("/readyz").json() == {"status": "ready"}
    app.app.state.services.capacity.start_drain(30)
    ready = app.get("/readyz")
    assert ready.status_code == 503 and ready.headers["retry-after"] == "7"
    assert app.get("/healthz").status_code == 200
    refused = app.post("/v1/init", content=body(MLP))
    assert refused.status_code == 503 and refused.headers["retry-after"] == "7"
    assert error_of(refused)["code"] == "draining"
    assert refused.headers["connection"] == "close"
    assert app.post("/v1/plan", content=body(MLP)).status_code == 200


@pytest.mark.parametrize("path", ["/v1/init", "/v1/report"])
def test_streams_over_capacity_get_503_with_retry_after(path: str) -> None:
    app = client(max_concurrent_streams=1)
    held = app.app.state.services.capacity.acquire(None)
    try:
        refused = app.post(path, content=body(MLP))
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
        assert error_of(refused)["code"] == "at_capacity"
    finally:
        held.release()
    assert app.post(path, content=body(MLP)).status_code == 200
    assert metric(app.get("/metrics").text, "weightinit_streams_in_flight") == 0


def test_request_id_is_echoed_when_sane_and_generated_otherwise() -> None:
    assert APP.get("/healthz", headers={"x-request-id": "job-7.rank-3"}
                   ).headers["x-request-id"] == "job-7.rank-3"
    for bad in ("has spaces", "x" * 300, "<script>"):
        generated = APP.get("/healthz", headers={"x-request-id": bad}).headers["x-request-id"]
        assert generated != bad and len(generated) == 32
    assert len(APP.post("/v1/init", content=b"{").headers["x-request-id"]) == 32


def test_security_headers_on_every_response() -> None:
    for response in (APP.get("/healthz"), APP.post("/v1/init", content=body(MLP)),
                     APP.get("/nowhere"), APP.get("/uix"), APP.get("/docsx")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]


def test_cors_is_off_unless_origins_are_configured() -> None:
    preflight = {"origin": "https://ui.example", "access-control-request-method": "POST"}
    assert "access-control-allow-origin" not in APP.options("/v1/init", headers=preflight
                                                             ).headers
    app = client(cors_origins="https://ui.example")
    allowed = app.options("/v1/init", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
    simple = app.post("/v1/plan", content=body(MLP), headers={"origin": "https://ui.example"})
    assert "etag" in simple.headers["access-control-expose-headers"].lower()


def test_requests_are_counted_by_route_template_and_status() -> None:
    app = client()
    app.post("/v1/plan", content=body(MLP))
    app.post("/v1/plan", content=b"{")
    app.get("/no/such/path")
    text = app.get("/metrics").text
    assert metric(text, "weightinit_http_requests_total", route="/v1/plan", status="200") == 1
    assert metric(text, "weightinit_http_requests_total", route="/v1/plan", status="422") == 1
    assert metric(text, "weightinit_http_requests_total", route="unmatched", status="404") == 1


def test_the_release_is_a_response_header_and_the_file_carries_the_spec() -> None:
    from weightinit import __version__

    response = APP.post("/v1/init", content=body(mlp()))
    assert response.headers["x-weightinit-version"] == __version__
    length = int.from_bytes(response.content[:8], "little")
    metadata = json.loads(response.content[8 : 8 + length])["__metadata__"]
    assert "weightinit_version" not in metadata
    assert hashlib.sha256(metadata["spec"].encode()).hexdigest() == metadata["spec_sha256"]
    report = APP.post("/v1/report", content=body(mlp())).json()
    assert report["weightinit_version"] == __version__
