"""Access control on the real server: bearer tokens from a mounted secret file, 401s,
open health endpoints, per-token stream limits, CORS when configured, security headers,
request IDs in responses and logs, and no token ever in the server's log output.

The in-process tests (``tests/service/server/test_http_auth.py``) cover the settings' corners;
these check the same through the process that runs in production, with its log.
"""

from __future__ import annotations

import hmac
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_helpers import RunningServer, free_port, start_server, wait_for, weightinit_command
from fault_helpers import BIG, SMALL, abort, open_stream
from weightinit.service.server.auth import Authenticator

TOKENS = ("alpha-7f3c9a1e-secret", "beta-0d44b2c8-secret")
WRONG = "gamma-not-a-token-5e1f"
ORIGIN = "https://ui.example"
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
                    "referrer-policy": "no-referrer"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Path]]:
    """A server with tokens from a file, one stream per token, CORS for one origin, and
    its info-level log in a file."""
    directory = tmp_path_factory.mktemp("guarded")
    secret = directory / "tokens"
    secret.write_text("\n".join(TOKENS) + "\n")
    log = directory / "server.log"
    server = start_server(log_path=log, api_tokens_file=str(secret), log_level="info",
                          max_streams_per_token="1", cors_origins=ORIGIN)
    # Said once at start: authentication is on, and with how many tokens (never which).
    wait_for(lambda: "authentication on: 2 bearer token(s)" in log.read_text(), timeout_s=60,
             what="the start-up line saying authentication is on")
    try:
        yield server, log
    finally:
        server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize("headers", [{}, bearer(WRONG), {"authorization": f"Basic {WRONG}"}])
def test_missing_or_wrong_token_is_401_with_www_authenticate(
    guarded: tuple[RunningServer, Path], headers: dict[str, str]
) -> None:
    server, _ = guarded
    response = httpx.post(server.base_url + "/v1/init", json=SMALL, headers=headers,
                          timeout=60)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert all(response.headers[k] == v for k, v in SECURITY_HEADERS.items())


def test_tokens_from_the_file_are_accepted_and_health_and_metrics_stay_open(
    guarded: tuple[RunningServer, Path],
) -> None:
    server, _ = guarded
    for token in TOKENS:
        response = httpx.post(server.base_url + "/v1/init", json=SMALL, headers=bearer(token),
                              timeout=60)
        assert response.status_code == 200
        assert all(response.headers[k] == v for k, v in SECURITY_HEADERS.items())
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert httpx.get(server.base_url + path, timeout=60).status_code == 200, path


def test_a_token_at_its_stream_limit_gets_429_and_others_are_served(
    guarded: tuple[RunningServer, Path],
) -> None:
    server, _ = guarded
    connection, held = open_stream(server.port, BIG, bearer(TOKENS[0]))
    try:
        assert held.status == 200
        refused = httpx.post(server.base_url + "/v1/init", json=SMALL,
                             headers=bearer(TOKENS[0]), timeout=60)
        # 429: this client is over its share; 503 is kept for the whole server full.
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "token_at_capacity"
        assert int(refused.headers["retry-after"]) > 0
        other = httpx.post(server.base_url + "/v1/init", json=SMALL, headers=bearer(TOKENS[1]),
                           timeout=60)
        assert other.status_code == 200
    finally:
        abort(connection, reset=True)


def test_cors_answers_the_configured_origin_only(guarded: tuple[RunningServer, Path],
                                                 server: RunningServer) -> None:
    guarded_server, _ = guarded
    preflight = {"origin": ORIGIN, "access-control-request-method": "POST",
                 "access-control-request-headers": "authorization,content-type"}
    allowed = httpx.options(guarded_server.base_url + "/v1/init", headers=preflight, timeout=60)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.options(guarded_server.base_url + "/v1/init", timeout=60,
                          headers={**preflight, "origin": "https://evil.example"})
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"
    # A script on the allowed origin can read every header the service adds.
    answer = httpx.post(guarded_server.base_url + "/v1/init", json=SMALL, timeout=60,
                        headers={**bearer(TOKENS[0]), "origin": ORIGIN})
    exposed = {h.strip() for h in answer.headers["access-control-expose-headers"].split(",")}
    custom = {name for name in answer.headers
              if name.startswith("x-weightinit-") or name in ("etag", "x-request-id")}
    assert custom <= exposed, custom - exposed
    assert {"retry-after", "www-authenticate", "content-length"} <= exposed
    # The default server (no WEIGHTINIT_CORS_ORIGINS) sends no CORS header at all.
    default = httpx.post(server.base_url + "/v1/plan", json=SMALL, timeout=60,
                         headers={"origin": ORIGIN})
    assert not any(name.startswith("access-control-") for name in default.headers)


def test_request_ids_are_echoed_and_logged_and_tokens_never_are(
    guarded: tuple[RunningServer, Path],
) -> None:
    server, log = guarded
    sent = httpx.post(server.base_url + "/v1/plan", json=SMALL, timeout=60,
                      headers={**bearer(TOKENS[1]), "x-request-id": "trace-42.a"})
    assert sent.headers["x-request-id"] == "trace-42.a"
    rejected = httpx.post(server.base_url + "/v1/plan", json=SMALL, timeout=60,
                          headers={**bearer(WRONG), "x-request-id": "trace-43.b"})
    assert rejected.status_code == 401 and rejected.headers["x-request-id"] == "trace-43.b"
    made_up = httpx.get(server.base_url + "/healthz", headers={"x-request-id": "bad id!"},
                        timeout=60).headers["x-request-id"]
    assert made_up != "bad id!" and made_up
    # The access line is written once the response has gone out, so it may land just
    # after the client has the answer: wait for it (a liveness bound, not a timing test).
    wait_for(lambda: f"request_id={made_up}" in log.read_text(), timeout_s=60,
             what="the last request's access log line")
    text = log.read_text()
    assert "request_id=trace-42.a principal=token-1" in text
    assert "request_id=trace-43.b" in text
    assert f"request_id={made_up}" in text
    for secret in (*TOKENS, WRONG, "secret"):  # every request above carried one
        assert secret not in text


def test_tokens_are_compared_with_hmac_compare_digest_against_every_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Constant time: ``hmac.compare_digest`` for each configured token whatever matches
    (no early exit that would tell by timing which token, or whether any, matched)."""
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr("weightinit.service.server.auth.hmac.compare_digest", spy)
    auth = Authenticator(list(TOKENS))
    for presented, expected in ((TOKENS[0], "token-0"), (TOKENS[1], "token-1")):
        calls.clear()
        assert auth.principal(f"Bearer {presented}") == expected
        assert len(calls) == len(TOKENS)
    calls.clear()
    with pytest.raises(Exception, match="invalid bearer token"):
        auth.principal(f"Bearer {WRONG}")
    assert len(calls) == len(TOKENS)


@pytest.mark.parametrize("content", ["", "\n\n", "  \n , ,\n"])
def test_an_empty_token_file_refuses_to_start(tmp_path: Path, content: str) -> None:
    """A configured token source without a token is an operator's mistake: starting with
    authentication off would publish the service. One clear line, exit code 2."""
    secret = tmp_path / "tokens"
    secret.write_text(content)
    env = {**os.environ, "WEIGHTINIT_API_TOKENS_FILE": str(secret)}
    result = subprocess.run([*weightinit_command(), "serve", "--port", str(free_port())],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds no token" in lines[0] and str(secret) in lines[0]


def test_inline_tokens_that_are_only_separators_refuse_to_start() -> None:
    env = {**os.environ, "WEIGHTINIT_API_TOKENS": " , ,"}
    result = subprocess.run([*weightinit_command(), "serve", "--port", str(free_port())],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "WEIGHTINIT_API_TOKENS" in result.stderr


def test_a_server_without_tokens_says_authentication_is_off(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = start_server(log_path=log, log_level="info")
    try:
        wait_for(lambda: "authentication off" in log.read_text(), timeout_s=60,
                 what="the start-up line saying authentication is off")
    finally:
        server.stop()
