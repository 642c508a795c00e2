"""``/openapi.json``: the request model (``core.Spec``) and real examples.

The POST routes read their body themselves (so a body of any content type is parsed as
JSON, validated once with pydantic's JSON parser, and errors name their field), which
means FastAPI does not see a body parameter; this module adds ``core.Spec`` as each
route's request body, and fills the plan and report examples by running the engine on
the spec's own example, so the documentation can never drift from what is served.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from weightinit.core import Spec, build_plan, generate_report, plan_document

_BODY_ROUTES = {
    "/v1/plan": "The model spec; same JSON as a `weightinit` spec file.",
    "/v1/init": "The model spec, with optional `select` (names and regions) and `shard`.",
    "/v1/report": "The model spec, with optional `select` (names and regions) and `shard`.",
}


def _examples() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The spec example, and the plan and report the engine makes of it."""
    spec_example = Spec.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
    plan = build_plan(Spec.model_validate(spec_example))
    return spec_example, plan_document(plan), generate_report(plan)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                         description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    spec_schema = Spec.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(spec_schema.pop("$defs", {}))
    components["Spec"] = spec_schema
    spec_example, plan_example, report_example = _examples()
    for path, description in _BODY_ROUTES.items():
        operation = schema["paths"][path]["post"]
        operation["requestBody"] = {
            "required": True,
            "description": description,
            "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Spec"},
                "example": spec_example,
            }},
        }
    for path, example in (("/v1/plan", plan_example), ("/v1/report", report_example)):
        content = schema["paths"][path]["post"]["responses"]["200"]["content"]
        content["application/json"]["example"] = example
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve ``build_openapi`` (computed once, on the first request for it)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
