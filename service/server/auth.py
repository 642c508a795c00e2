"""Optional bearer-token authentication.

Off when no token is configured. On, every ``/v1`` route needs
``Authorization: Bearer <token>``; health endpoints stay open, and ``/metrics`` too unless
``WEIGHTINIT_METRICS_REQUIRE_AUTH``. Tokens are compared in constant time
(``hmac.compare_digest`` against every configured token, so the time does not say which
one matched) and are never logged: a request is known by its token's position
(``token-2``), which is also the key of the per-token stream limit.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from weightinit.service.server.errors import unauthorized

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="Needed only when the server is started with WEIGHTINIT_API_TOKENS.",
)


class Authenticator:
    """Checks bearer tokens against the configured set."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [token.encode() for token in tokens]

    def __repr__(self) -> str:  # never show the tokens
        return f"Authenticator({len(self._tokens)} tokens)"

    def principal(self, authorization: str | None) -> str | None:
        """The caller's identity (``token-N``), ``None`` when auth is off.

        Raises the 401 ``ApiError`` when auth is on and the header is missing or wrong.
        """
        if not self._tokens:
            return None
        if not authorization:
            raise unauthorized("missing bearer token")
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise unauthorized("expected 'Authorization: Bearer <token>'")
        candidate = presented.strip().encode()
        matched = -1
        for index, token in enumerate(self._tokens):
            if hmac.compare_digest(candidate, token) and matched < 0:
                matched = index
        if matched < 0:
            raise unauthorized("invalid bearer token")
        return f"token-{matched}"


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str | None:
    """FastAPI dependency: the caller's identity, or a 401; stored for the access log.

    ``credentials`` is declared only so that OpenAPI shows the bearer scheme; the header
    is checked by ``Authenticator``, which also gives the 401 its error format.
    """
    principal = request.app.state.services.auth.principal(request.headers.get("authorization"))
    request.scope.setdefault("state", {})["principal"] = principal
    return principal


Principal = Annotated[str | None, Depends(require_token)]
