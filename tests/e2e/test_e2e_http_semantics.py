"""HTTP details against the real server: strict JSON everywhere, no 500 for input, an
unexpected error answered in the error format on a connection that stays usable, HTTP/1.0,
Accept quality values, HEAD, the offline API docs, JSON-only POST bodies and Host checks.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from e2e_helpers import RunningServer, free_port, start_server, wait_for
from fault_helpers import SMALL
from weightinit.service.server.app import create_app
from weightinit.service.server.run import server_config
from weightinit.service.server.settings import Settings


def strict_loads(text: str | bytes) -> Any:
    """RFC 8259 JSON only: ``NaN``, ``Infinity`` and ``-Infinity`` are errors."""
    def refuse(token: str) -> None:
        raise ValueError(f"non-RFC-8259 token {token}")
    return json.loads(text, parse_constant=refuse)


def spec(init: Any, dtype: str = "float32", **extra: Any) -> dict:
    return {"seed": 1, "dtype": dtype, "layers": [
        {"type": "linear", "name": "l0", "in_features": 4, "out_features": 4,
         "weight_init": init, "bias_init": "zeros"},
        {"type": "linear", "name": "l1", "in_features": 4, "out_features": 2}], **extra}


def multipart_report(response: httpx.Response) -> bytes:
    boundary = response.headers["content-type"].split("boundary=")[1].encode()
    last = response.content.rsplit(b"\r\n--" + boundary + b"--", 1)[0]
    return last.rsplit(b"\r\n--" + boundary + b"\r\n", 1)[1].split(b"\r\n\r\n", 1)[1]


# ------------------------------------------------------------------ item 5: strict JSON
DTYPE_OVERFLOWS = [
    ({"name": "constant", "value": 1e39}, "float32"),
    ({"name": "constant", "value": 70000}, "float16"),
    ({"name": "xavier_uniform", "gain": 65504}, "float16"),
    ({"name": "normal", "mean": 1e155, "std": 1.0}, "float32"),
    ({"name": "uniform", "low": 1e155, "high": 1e155}, "bfloat16"),
    ({"name": "orthogonal", "gain": 1e5}, "float16"),
]


@pytest.mark.parametrize(("init", "dtype"), DTYPE_OVERFLOWS)
def test_values_over_the_dtype_are_422_naming_the_initializer(
    server: RunningServer, init: dict, dtype: str
) -> None:
    with server.client() as client:
        for path, body, loc in (
            ("/v1/plan", spec(init, dtype), ["layers", 0, "weight_init"]),
            ("/v1/init", spec(init, dtype), ["layers", 0, "weight_init"]),
            ("/v1/report", spec(init, dtype), ["layers", 0, "weight_init"]),
            ("/v1/diagnose", {"spec": spec(init, dtype)}, ["spec", "layers", 0, "weight_init"]),
        ):
            response = client.post(path, json=body)
            assert response.status_code == 422, (path, response.text)
            error = strict_loads(response.text)["error"]
            assert error["details"][0]["loc"] == loc
            assert dtype in error["message"]


DEGENERATE = [
    ({"name": "normal", "mean": 0.0, "std": 5e-324}, "float64"),  # zero-width histogram
    ({"name": "normal", "mean": 1e155, "std": 1.0}, "float64"),  # variance past float64
    ({"name": "constant", "value": 1e300}, "float64"),
    ({"name": "random_normal", "mean": 1e155}, "float64"),
    ({"name": "uniform", "low": 1e155, "high": 1e155}, "float64"),
]


@pytest.mark.parametrize(("init", "dtype"), DEGENERATE)
def test_degenerate_statistics_are_null_with_a_warning_in_strict_json(
    server: RunningServer, init: dict, dtype: str
) -> None:
    with server.client() as client:
        report = client.post("/v1/report", json=spec(init, dtype))
        diagnose = client.post("/v1/diagnose", json={"spec": spec(init, dtype)})
        both = client.post("/v1/init", json=spec(init, dtype),
                           headers={"accept": "multipart/mixed"})
        plan = client.post("/v1/plan", json=spec(init, dtype))
    warned = 0
    for name, response, text in (("report", report, report.content),
                                 ("diagnose", diagnose, diagnose.content),
                                 ("multipart", both, multipart_report(both)),
                                 ("plan", plan, plan.content)):
        assert response.status_code == 200, (name, response.text[:300])
        document = strict_loads(text)
        for warning in document.get("warnings", []):
            if "not a finite number" in warning:
                warned += 1
                assert value_at(document, warning.split(": ", 1)[0]) is None, warning
    assert warned, "a degenerate statistic without a warning"


def value_at(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901)."""
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def test_every_endpoint_writes_strict_json(server: RunningServer) -> None:
    with server.client() as client:
        answers = [client.get(p) for p in ("/healthz", "/readyz", "/v1/initializers",
                                           "/openapi.json", "/nowhere")]
        answers += [client.post(p, json=SMALL) for p in ("/v1/plan", "/v1/report")]
        answers.append(client.post("/v1/diagnose", json={"spec": SMALL}))
        answers.append(client.post("/v1/plan", json={"seed": "x"}))
        answers.append(client.post("/v1/plan", content=b"{", headers={
            "content-type": "application/json"}))
        answers.append(client.post("/v1/plan", content=b"{}", headers={
            "content-type": "text/plain"}))
        answers.append(client.put("/v1/plan"))
        both = client.post("/v1/init", json=SMALL, headers={"accept": "multipart/mixed"})
    for response in answers:
        assert response.headers["content-type"].startswith("application/json"), response.url
        strict_loads(response.content)
    strict_loads(multipart_report(both))


# -------------------------------------------------------- item 4: no 500, and a real 500
OVERFLOW_INPUTS = [
    {"name": "constant", "value": 1e155},
    {"name": "normal", "mean": 1e155, "std": 1.0},
    {"name": "random_normal", "mean": 1e155},
    {"name": "uniform", "low": 1e155, "high": 1e155},
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("init", OVERFLOW_INPUTS)
def test_huge_means_never_give_a_500_and_keep_the_connection(
    server: RunningServer, init: dict, dtype: str
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        for path, body in (("/v1/diagnose", {"spec": spec(init, dtype)}),
                           ("/v1/report", spec(init, dtype)), ("/v1/plan", spec(init, dtype))):
            connection.request("POST", path, body=json.dumps(body),
                               headers={"content-type": "application/json"})
            response = connection.getresponse()
            text = response.read()
            assert response.status in (200, 422), (path, response.status, text[:200])
            document = strict_loads(text)
            if response.status == 422:
                message = document["error"]["message"]
                assert "Numerical result" not in message and "(34," not in message
        connection.request("GET", "/healthz")  # the same keep-alive connection
        assert connection.getresponse().status == 200
    finally:
        connection.close()


@pytest.fixture
def failing_server() -> Iterator[tuple[int, uvicorn.Server]]:
    """The service's app and uvicorn configuration, in this process, with one extra route
    that raises: an unexpected exception, injected."""
    settings = Settings(port=free_port(), log_level="critical")
    app = create_app(settings)

    @app.get("/v1/broken")
    async def broken() -> None:
        raise RuntimeError("injected failure")

    server = uvicorn.Server(server_config(settings, app))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout_s=60, what="the in-process server")
    try:
        yield settings.port, server
    finally:
        server.should_exit = True
        thread.join(30)


def test_an_unexpected_exception_is_a_json_500_on_a_usable_connection(
    failing_server: tuple[int, uvicorn.Server],
) -> None:
    port, _ = failing_server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", "/v1/broken", headers={"x-request-id": "boom-1"})
        response = connection.getresponse()
        document = strict_loads(response.read())
        assert response.status == 500
        assert document["error"]["code"] == "internal_error"
        assert "boom-1" in document["error"]["message"]
        assert "injected" not in document["error"]["message"]  # no internals leak
        assert response.getheader("x-request-id") == "boom-1"
        assert response.getheader("x-content-type-options") == "nosniff"
        assert (response.getheader("connection") or "").lower() != "close"
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


# ---------------------------------------------------------------- item 7: protocol details
def raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(1 << 20):
            received += chunk
    return received


def test_http_1_0_multipart_has_a_content_length_and_no_chunking(server: RunningServer
                                                                 ) -> None:
    body = json.dumps(SMALL).encode()
    answer = raw_exchange(server.port, (
        "POST /v1/init HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Accept: multipart/mixed\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
    head, payload = answer.split(b"\r\n\r\n", 1)
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    headers = {k.lower(): v for k, v in headers.items()}
    assert head.split(b" ")[1] == b"200"
    assert b"transfer-encoding" not in headers
    assert int(headers[b"content-length"]) == len(payload)
    boundary = headers[b"content-type"].split(b"boundary=")[1]
    assert payload.endswith(b"\r\n--" + boundary + b"--\r\n")
    report = strict_loads(payload.rsplit(b"\r\n--" + boundary + b"--", 1)[0].rsplit(
        b"\r\n\r\n", 1)[1])
    with server.client() as client:
        assert report == client.post("/v1/report", json=SMALL).json() | {
            "weightinit_version": report["weightinit_version"]}


@pytest.mark.parametrize("accept", ["multipart/mixed;Q=0", "multipart/mixed; q=0.",
                                    "multipart/mixed;q=0.000", "multipart/mixed; q=bogus"])
def test_zero_quality_refuses_multipart(server: RunningServer, accept: str) -> None:
    response = httpx.post(server.base_url + "/v1/init", json=SMALL, headers={"accept": accept},
                          timeout=60)
    assert response.headers["content-type"] == "application/octet-stream"


def test_non_zero_quality_accepts_multipart(server: RunningServer) -> None:
    response = httpx.post(server.base_url + "/v1/init", json=SMALL, timeout=60,
                          headers={"accept": "multipart/mixed;Q=0.5"})
    assert response.headers["content-type"].startswith("multipart/mixed")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/v1/initializers",
                                  "/openapi.json", "/docs", "/redoc", "/ui"])
def test_head_answers_as_get_without_a_body(server: RunningServer, path: str) -> None:
    get = httpx.get(server.base_url + path, timeout=60)
    head = httpx.head(server.base_url + path, timeout=60)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_every_asset_from_the_service(server: RunningServer, page: str) -> None:
    response = httpx.get(server.base_url + page, timeout=60)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "default-src 'none'" in csp
    assert "<script>" not in response.text  # no inline script: the CSP forbids them
    urls = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert len(urls) >= 3 and all(url.startswith("/") for url in urls), urls
    for url in urls:
        asset = httpx.get(server.base_url + url, timeout=60)
        assert asset.status_code == 200 and asset.content, url
    openapi = re.search(r'data-openapi="([^"]+)"', response.text).group(1)
    assert httpx.get(server.base_url + openapi, timeout=60).status_code == 200


def test_root_leads_to_the_ui(server: RunningServer) -> None:
    response = httpx.get(server.base_url + "/", timeout=60, follow_redirects=True)
    assert response.status_code == 200 and str(response.url).endswith("/ui")


# ---------------------------------------------------------------- item 8: cross-site requests
@pytest.mark.parametrize("content_type", [None, "text/plain",
                                          "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=b"])
def test_post_without_application_json_is_415(server: RunningServer,
                                              content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    for path in ("/v1/plan", "/v1/init", "/v1/report", "/v1/diagnose"):
        response = httpx.post(server.base_url + path, content=json.dumps(SMALL).encode(),
                              headers=headers, timeout=60)
        assert response.status_code == 415, path
        assert "application/json" in strict_loads(response.content)["error"]["message"]


@pytest.fixture(scope="module")
def host_checked() -> Iterator[RunningServer]:
    server = start_server(allowed_hosts="weightinit.internal,127.0.0.1,*.svc.example")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(("host", "status"), [
    ("weightinit.internal", 200), ("WEIGHTINIT.internal:8000", 200), ("127.0.0.1:1", 200),
    ("api.svc.example", 200), ("rebind.attacker.example", 400), ("svc.example.evil", 400),
])
def test_the_host_header_is_checked(host_checked: RunningServer, host: str, status: int
                                    ) -> None:
    response = httpx.post(host_checked.base_url + "/v1/plan", json=SMALL, timeout=60,
                          headers={"host": host})
    assert response.status_code == status
    if status == 400:
        assert strict_loads(response.content)["error"]["code"] == "invalid_host"


def test_probes_answer_whatever_the_host(host_checked: RunningServer) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        response = httpx.get(host_checked.base_url + path, headers={"host": "10.1.2.3:8000"},
                             timeout=60)
        assert response.status_code == 200, path


def test_the_default_bind_is_loopback() -> None:
    assert Settings().host == "127.0.0.1"


@pytest.mark.parametrize("init", [{"name": "xavier_uniform", "gain": 1e300},
                                  {"name": "orthogonal", "gain": 1e300},
                                  {"name": "uniform", "low": -1e308, "high": 1e308}])
def test_overflowing_parameters_are_said_in_words_not_errno(server: RunningServer,
                                                            init: dict) -> None:
    response = httpx.post(server.base_url + "/v1/plan", json=spec(init, "float64"), timeout=60)
    assert response.status_code == 422
    error = strict_loads(response.content)["error"]
    assert error["details"][0]["loc"] == ["layers", 0, "weight_init"]
    assert "(34," not in error["message"] and "Numerical result" not in error["message"]
    assert "too large" in error["message"] or "overflows" in error["message"]
