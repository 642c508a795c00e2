"""Bearer tokens: off by default, constant-time checked, never logged, per-token limits."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from http_helpers import MLP, body, client, error_of
from weightinit.service.server.settings import Settings

TOKENS = "alpha-secret-token,beta-secret-token"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_without_tokens_every_route_is_open() -> None:
    assert client().post("/v1/plan", content=body(MLP)).status_code == 200


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"authorization": "Basic eA=="},
                                     {"authorization": "Bearer "}])
def test_missing_or_wrong_token_is_401_with_www_authenticate(headers: dict) -> None:
    response = client(api_tokens=TOKENS).post("/v1/init", content=body(MLP), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize("token", TOKENS.split(","))
def test_each_configured_token_is_accepted(token: str) -> None:
    app = client(api_tokens=TOKENS)
    for path in ("/v1/plan", "/v1/init", "/v1/report"):
        assert app.post(path, content=body(MLP), headers=bearer(token)).status_code == 200
    assert app.get("/v1/initializers", headers=bearer(token)).status_code == 200


def test_tokens_from_a_mounted_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "tokens"
    secret.write_text("file-token-one\nfile-token-two\n")
    app = client(api_tokens_file=secret)
    assert app.post("/v1/plan", content=body(MLP), headers=bearer("file-token-two")
                    ).status_code == 200
    assert app.post("/v1/plan", content=body(MLP)).status_code == 401


def test_health_and_metrics_stay_open_with_auth_on() -> None:
    app = client(api_tokens=TOKENS)
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert app.get(path).status_code == 200, path


def test_metrics_can_require_the_token() -> None:
    app = client(api_tokens=TOKENS, metrics_require_auth=True)
    assert app.get("/metrics").status_code == 401
    assert app.get("/metrics", headers=bearer("beta-secret-token")).status_code == 200


def test_per_token_stream_limit_is_429_for_that_token_only() -> None:
    app = client(api_tokens=TOKENS, max_streams_per_token=1)
    held = app.app.state.services.capacity.acquire("token-0")  # alpha has a stream going
    try:
        refused = app.post("/v1/init", content=body(MLP), headers=bearer("alpha-secret-token"))
        assert refused.status_code == 429
        assert error_of(refused)["code"] == "token_at_capacity"
        assert int(refused.headers["retry-after"]) > 0
        other = app.post("/v1/init", content=body(MLP), headers=bearer("beta-secret-token"))
        assert other.status_code == 200
    finally:
        held.release()


def test_tokens_never_reach_the_log_or_the_settings_repr(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    app = client(api_tokens=TOKENS)
    with caplog.at_level(logging.INFO, logger="weightinit"):
        app.post("/v1/plan", content=body(MLP), headers=bearer("alpha-secret-token"))
        app.post("/v1/plan", content=body(MLP), headers=bearer("not-a-token-at-all"))
    assert "principal=token-0" in caplog.text
    assert "secret-token" not in caplog.text and "not-a-token" not in caplog.text
    assert "secret-token" not in repr(Settings(api_tokens=TOKENS))
    assert "secret-token" not in repr(app.app.state.services.auth)
