"""One error format for every failure: ``{"error": {"code", "message", "details"}}``.

``details`` is a list of ``{"loc", "msg"}``; ``loc`` is the path of the offending field
inside the JSON body (``["layers", 0, "in_features"]``), ``[]`` for the body as a whole.
Pydantic's discriminated-union tags (``"linear"`` in ``layers.0.linear.in_features``) are
dropped so that a ``loc`` can always be followed in the body the client sent. Client
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

from core import SpecError

Loc = list[str | int]

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


_ABSENT = object()  # past the end of the body (or no body to follow)


def _follow(loc: Sequence[Any], body: Any) -> tuple[Loc, Any]:
    """``loc`` without the union tags that are not keys of the body, and the node there."""
    path: Loc = []
    node = _ABSENT if body is None else body
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and part in (
            node.get("type"), node.get("name"), node.get("class_name")
        ):
            continue  # a discriminator tag, not a field
        if isinstance(node, str) and part == node:
            continue  # an initializer given by name: pydantic adds the name as a tag
        if isinstance(part, str) and not isinstance(node, dict) and node is not _ABSENT:
            continue  # a union member's tag on a value (``constrained-int``, ``list[...]``)
        path.append(part)
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part, _ABSENT)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = _ABSENT
    return path, (None if node is _ABSENT else node)


def validation_details(errors: Sequence[dict[str, Any]], raw_body: bytes | None) -> list[dict]:
    """Pydantic errors as ``details``, with locations that exist in the body."""
    body = None
    if raw_body and not any(e.get("type") == "json_invalid" for e in errors):
        try:
            body = json.loads(raw_body)
        except (ValueError, RecursionError):  # pydantic's parser accepted what json won't
            body = None
    details = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if loc and loc[0] == "body":  # FastAPI's prefix for body parameters
            loc = loc[1:]
        if error.get("type") == "json_invalid":
            loc = []
        path, node = _follow(loc, body)
        discriminator = (error.get("ctx") or {}).get("discriminator")
        if isinstance(node, dict) and isinstance(discriminator, str):
            path.append(discriminator.strip("'\""))  # unknown "type": point at that key
        details.append({"loc": path, "msg": error.get("msg", "invalid")})
    return details


def invalid_request(errors: Sequence[dict[str, Any]], raw_body: bytes | None) -> ApiError:
    """A 422 for a body that does not validate (malformed JSON included)."""
    details = validation_details(errors, raw_body)
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    code = "malformed_json" if any(e.get("type") == "json_invalid" for e in errors) else (
        "invalid_request")
    return ApiError(422, code, f"{where}: {first['msg']}{more}", details)


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
