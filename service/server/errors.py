"""One error format for every failure: ``{"error": {"code", "message", "details"}}``.

``details`` is a list of ``{"loc", "msg"}``; ``loc`` is the path of the offending field
inside the JSON body (``["layers", 0, "in_features"]``), ``[]`` for the body as a whole.
Pydantic's discriminated-union tags (``"linear"`` in ``layers.0.linear.in_features``) are
dropped so that a ``loc`` can always be followed in the body the client sent
(``weightinit.service.server.error_paths``, shared with the CLI). Client
input never produces a 500: schema errors are 422, sizes over the limits 413, missing or
wrong tokens 401, capacity and draining 503 with ``Retry-After``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from weightinit.core import SpecError
from weightinit.service.server.error_paths import validation_details

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(Exception):
    """A failure with its HTTP status, a stable ``code`` and the fields at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)
        self.headers = headers or {}

    def response(self) -> Response:
        """This error in the one error format."""
        return error_response(self.status, self.code, self.message, self.details,
                              self.headers)


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a body grows over the limit while being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


def body_too_large(limit: int) -> ApiError:
    """The 413 for a body over the limit; the connection closes, as the rest of the body
    is left unread."""
    return ApiError(413, "body_too_large", f"request body over the limit of {limit} bytes",
                    [{"loc": [], "msg": f"at most {limit} bytes"}], {"connection": "close"})


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def unavailable(code: str, message: str, retry_after_s: int) -> ApiError:
    return ApiError(503, code, message, headers={"Retry-After": str(retry_after_s)})


def error_response(
    status: int, code: str, message: str, details: Sequence[dict[str, Any]] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    """The JSON error body, with ``Cache-Control: no-store``."""
    body = {"error": {"code": code, "message": message, "details": list(details)}}
    content = json.dumps(body, ensure_ascii=False, default=str).encode()
    return Response(content, status, {"cache-control": "no-store", **(headers or {})},
                    media_type="application/json")


def client_closed_response() -> Response:
    """499 (nginx's code): the client left before the answer was ready; nobody reads it,
    but the access log and the metrics say who ended the request."""
    return error_response(499, "client_closed_request", "client disconnected")


def invalid_request(errors: Sequence[dict[str, Any]], raw_body: bytes | None) -> ApiError:
    """A 422 for a body that does not validate (malformed JSON included)."""
    details = validation_details(errors, raw_body)
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    malformed = any(e.get("type") == "json_invalid" for e in errors)
    if malformed:
        return ApiError(422, "malformed_json", not_json_message(raw_body, first["msg"]), details)
    return ApiError(422, "invalid_request", f"{where}: {first['msg']}{more}", details)


JSON_BODY_HINT = ("the body must be the JSON spec itself, sent with Content-Type: "
                  "application/json (curl: -H 'Content-Type: application/json' -d @spec.json, "
                  "not -F)")


def not_json_message(raw_body: bytes | None, parser_message: str) -> str:
    """What to tell a client whose body is not JSON: an empty body or a form upload is a
    wrong way of sending the spec, not a typo in it."""
    text = (raw_body or b"").lstrip()
    if not text:
        return f"empty body: {JSON_BODY_HINT}"
    if text.startswith(b"--") or (b"=" in text[:200] and not text.startswith((b"{", b"["))):
        return f"the body looks like a form upload, not JSON: {JSON_BODY_HINT}"
    return f"the body is not valid JSON ({parser_message}): {JSON_BODY_HINT}"


def install_handlers(app: FastAPI) -> None:
    """Route every failure through ``error_response``."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> Response:
        return error.response()

    @app.exception_handler(BodyTooLarge)
    async def _body_too_large(request: Request, error: BodyTooLarge) -> Response:
        return body_too_large(error.limit).response()

    @app.exception_handler(ClientDisconnect)  # gone while the body was being read
    async def _client_disconnect(request: Request, error: ClientDisconnect) -> Response:
        return client_closed_response()

    @app.exception_handler(SpecError)
    async def _spec_error(request: Request, error: SpecError) -> Response:
        return error_response(error.status, error.code, str(error), error.details())

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, error: RequestValidationError) -> Response:
        return invalid_request(error.errors(), None).response()

    @app.exception_handler(ValidationError)
    async def _validation(request: Request, error: ValidationError) -> Response:
        return invalid_request(error.errors(include_input=False), None).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(error.status_code, "error")
        return error_response(error.status_code, code, str(error.detail), (),
                              dict(error.headers or {}))
