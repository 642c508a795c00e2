"""The HTTP API (``docs/service.md``): thin routes over the engine.

Each route parses and validates (``weightinit.service.server.planning``), calls the
engine, streams or reports, and says what went wrong in the one error format
(``weightinit.service.server.errors``).
``create_app(settings)`` builds an independent app (its own metrics registry, capacity
and plan cache), so tests run apps with their own limits side by side;
``create_app_from_env()`` is the factory uvicorn's workers import.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import Response
from weightinit.core import ChunkStream, Plan, catalogue
from weightinit.core.safetensors_io.writer import package_version
from weightinit.service.server import diagnose, strict_json
from weightinit.service.server.apidocs import install_api_docs
from weightinit.service.server.auth import Authenticator, Principal, require_token
from weightinit.service.server.capacity import Capacity
from weightinit.service.server.errors import client_closed_response, install_handlers
from weightinit.service.server.media_type import require_json
from weightinit.service.server.metrics import PROMETHEUS_CONTENT_TYPE, Metrics
from weightinit.service.server.middleware import ServiceMiddleware
from weightinit.service.server.models import (
    ErrorResponse,
    InitializerEntry,
    PlanDocument,
    ReportDocument,
    Status,
)
from weightinit.service.server.openapi import install_openapi
from weightinit.service.server.planning import Planner
from weightinit.service.server.protocol import SEND_WATCH
from weightinit.service.server.settings import Settings
from weightinit.service.server.streaming import (
    SafetensorsResponse,
    StreamRun,
    etag_matches,
    multipart_etag,
    report_while_connected,
)
from weightinit.service.server.ui import install_ui

JSON = "application/json"
_ERRORS = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (401, "authentication is on and the bearer token is missing or wrong"),
        (413, "body, tensor count or parameter count over the limits"),
        (422, "invalid spec: `details[].loc` names the field"),
    )
}
_STREAM_ERRORS = {
    **_ERRORS,
    429: {"model": ErrorResponse, "description": "this token's streams are at its limit; "
          "see Retry-After"},
    503: {"model": ErrorResponse, "description": "at capacity or draining; see Retry-After"},
}
# Every response header a browser script may want to read across origins.
EXPOSED_HEADERS = ["etag", "x-request-id", "retry-after", "content-length", "content-type",
                   "vary", "www-authenticate", "x-weightinit-spec-sha256",
                   "x-weightinit-parameters", "x-weightinit-tensors", "x-weightinit-version"]
_QVALUE = re.compile(r"^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")


@dataclass
class Services:
    """What the routes share, one set per app."""

    settings: Settings
    metrics: Metrics
    capacity: Capacity
    planner: Planner
    auth: Authenticator
    catalogue_json: bytes


def services(request: Request) -> Services:
    return request.app.state.services


def _json(document: object, status: int = 200, headers: dict[str, str] | None = None
          ) -> Response:
    return Response(strict_json.dumps(document), status, headers, media_type=JSON)


def _quality(params: list[str]) -> float:
    """The ``q`` of a media range (RFC 9110 12.4.2; the name case-insensitive); a
    malformed qvalue counts as a refusal."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            value = value.strip()
            return float(value) if _QVALUE.match(value) else 0.0
    return 1.0


def wants_multipart(accept: str | None) -> bool:
    """True when the client accepts ``multipart/mixed`` with a non-zero quality."""
    for media_range in (accept or "").split(","):
        media_type, *params = (part.strip() for part in media_range.split(";"))
        if media_type.lower() == "multipart/mixed":
            return _quality(params) > 0
    return False


def _start_stream(request: Request, plan: Plan, principal: str | None, endpoint: str, *,
                  observed: bool) -> StreamRun:
    """A capacity slot (or the 503/429) and the chunk stream of one generation; an
    observed one also yields the statistics and hashes of a report."""
    svc = services(request)
    slot = svc.capacity.acquire(principal)
    stream = ChunkStream(plan, with_stats=observed, chunk_bytes=svc.settings.chunk_bytes,
                         window=svc.settings.stream_window)
    send_watch = request.scope.get("extensions", {}).get(SEND_WATCH)
    return StreamRun(stream, slot, svc.metrics, endpoint, send_watch)


v1 = APIRouter(prefix="/v1", tags=["weights"], dependencies=[Depends(require_json)])


@v1.post("/plan", summary="The plan: every tensor, resolved, nothing generated",
         responses={200: {"model": PlanDocument}, **_ERRORS})
async def post_plan(request: Request, principal: Principal) -> Response:
    document = await services(request).planner.plan_json(await request.body())
    return Response(document, media_type=JSON)


@v1.post(
    "/init",
    summary="The safetensors file, streamed (or multipart: file + report)",
    response_class=Response,
    responses={
        200: {
            "description": "The safetensors file with `Content-Length` and a strong `ETag`;"
            " with `Accept: multipart/mixed`, part 1 is the file and part 2 the JSON report.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/mixed": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        304: {"description": "`If-None-Match` matched the ETag: nothing generated"},
        **_STREAM_ERRORS,
    },
)
async def post_init(request: Request, principal: Principal) -> Response:
    svc = services(request)
    prepared = await svc.planner.prepare(await request.body())
    multipart = wants_multipart(request.headers.get("accept"))
    etag = multipart_etag(prepared.etag) if multipart else prepared.etag
    headers = {
        "etag": etag,
        "vary": "Accept",
        "x-weightinit-spec-sha256": prepared.plan.spec_sha256,
        "x-weightinit-parameters": str(prepared.plan.total_parameters),
        "x-weightinit-tensors": str(len(prepared.plan.outputs)),
        # The producer's release: not in the file, whose bytes do not depend on it.
        "x-weightinit-version": package_version(),
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    report = None
    if multipart and request.scope.get("http_version") == "1.0":
        # HTTP/1.0 has no chunked encoding: generate the report first, so the response
        # has a Content-Length, then the same bytes again (deterministic) as part 1.
        run = _start_stream(request, prepared.plan, principal, "report", observed=True)
        document = await report_while_connected(prepared.plan, prepared.header, run,
                                                request.receive)
        if document is None:
            return client_closed_response()
        report = strict_json.dumps(document)
    run = _start_stream(request, prepared.plan, principal, "init",
                        observed=multipart and report is None)
    return SafetensorsResponse(prepared.plan, prepared.header, run, headers, multipart, report)


@v1.post("/report", summary="Generate without sending the file: the plan plus observations",
         responses={200: {"model": ReportDocument}, **_STREAM_ERRORS})
async def post_report(request: Request, principal: Principal) -> Response:
    svc = services(request)
    prepared = await svc.planner.prepare(await request.body())
    run = _start_stream(request, prepared.plan, principal, "report", observed=True)
    document = await report_while_connected(prepared.plan, prepared.header, run, request.receive)
    if document is None:
        return client_closed_response()
    return _json(document)


@v1.get("/initializers", summary="The initializer catalogue: parameters and formulas",
        responses={200: {"model": list[InitializerEntry]}, 401: _ERRORS[401]})
async def get_initializers(request: Request, principal: Principal) -> Response:
    return Response(services(request).catalogue_json, media_type=JSON)


ops = APIRouter(tags=["operations"])


@ops.get("/healthz", summary="Liveness: the process answers", responses={200: {"model": Status}})
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type=JSON)


@ops.get("/readyz", summary="Readiness: 503 once draining after SIGTERM",
         responses={200: {"model": Status}, 503: {"model": Status}})
async def readyz(request: Request) -> Response:
    capacity = services(request).capacity
    if capacity.draining:
        return Response(b'{"status":"draining"}', 503,
                        {"retry-after": str(capacity.retry_after_s)}, media_type=JSON)
    return Response(b'{"status":"ready"}', media_type=JSON)


@ops.get("/metrics", summary="Prometheus metrics of this worker process",
         response_class=Response)
async def metrics(request: Request) -> Response:
    svc = services(request)
    if svc.settings.metrics_require_auth:
        await require_token(request, None)
    return Response(svc.metrics.exposition(), media_type=PROMETHEUS_CONTENT_TYPE)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A complete app for these settings (default: from the environment)."""
    settings = settings or Settings()
    settings.configure_engine()
    metrics = Metrics()
    capacity = Capacity(settings.max_concurrent_streams, settings.max_streams_per_token,
                        settings.retry_after_s, metrics)
    app = FastAPI(
        title="weightinit",
        version=package_version(),
        summary="Deterministic model-weight initialization, streamed as safetensors.",
        docs_url=None,
        redoc_url=None,
        description=(
            "POST a model spec and a seed; get the same bytes on any machine. "
            "Errors are `{\"error\": {\"code\", \"message\", \"details\": [{\"loc\", "
            "\"msg\"}]}}`, with `loc` the path of the field in the body."
        ),
    )
    app.state.services = Services(
        settings=settings,
        metrics=metrics,
        capacity=capacity,
        planner=Planner(settings.limits(), settings.plan_cache_entries),
        auth=Authenticator(settings.tokens()),
        catalogue_json=json.dumps(catalogue()).encode(),
    )
    install_handlers(app)
    install_api_docs(app)
    app.include_router(v1)
    app.include_router(ops)
    app.include_router(diagnose.router)
    install_ui(app)
    install_openapi(app)
    origins = settings.cors_origin_list()
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "accept", "if-none-match",
                           "x-request-id"],
            expose_headers=EXPOSED_HEADERS,
        )
    app.add_middleware(ServiceMiddleware, metrics=metrics, capacity=capacity,
                       max_body_bytes=settings.max_body_bytes,
                       allowed_hosts=settings.allowed_host_list())
    return app


def create_app_from_env() -> FastAPI:
    """The app as configured by ``WEIGHTINIT_*`` variables (uvicorn's factory)."""
    return create_app(Settings())
