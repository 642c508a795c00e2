"""``/docs`` (Swagger UI), ``/redoc`` (ReDoc) and ``GET /``, served by the service itself.

The Swagger UI and ReDoc bundles come from the ``fastapi-offline`` package (its
``static/`` folder, served with Starlette's ``StaticFiles`` under ``/docs/assets``), the
two start-up scripts from ``service/server/static/apidocs``: nothing is loaded from a CDN, so
the pages work air-gapped, under a CSP that allows only the server's own scripts.
``GET /`` redirects to the ``/ui`` page.
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

BUNDLES = Path(fastapi_offline.__file__).parent / "static"
INIT_SCRIPTS = Path(__file__).parent / "static" / "apidocs"
ASSETS_URL = "/docs/assets"
INIT_URL = "/docs/init"
# Swagger UI and ReDoc set inline styles and ReDoc runs a web worker from a blob:;
# scripts come only from this server, and the pages call only this server.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{root}{assets}/favicon.png">
{styles}</head>
<body data-openapi="{root}{openapi}"><div id="{element}"></div>
<script src="{root}{script}"></script>
<script src="{root}{init}"></script>
</body></html>
"""

router = APIRouter(include_in_schema=False)


def _page(request: Request, *, title: str, element: str, script: str, init: str,
          styles: str = "") -> Response:
    root = html.escape(request.scope.get("root_path", ""))
    body = _PAGE.format(
        title=html.escape(f"{request.app.title} - {title}"), root=root, assets=ASSETS_URL,
        openapi=request.app.openapi_url, element=element, script=script, init=init,
        styles=styles.format(root=root),
    )
    return HTMLResponse(body, headers={"content-security-policy": DOCS_CSP,
                                       "cache-control": "no-cache"})


@router.get("/docs")
async def swagger_ui(request: Request) -> Response:
    return _page(request, title="Swagger UI", element="swagger-ui",
                 script=f"{ASSETS_URL}/swagger-ui-bundle.js", init=f"{INIT_URL}/swagger-init.js",
                 styles=f'<link rel="stylesheet" href="{{root}}{ASSETS_URL}/swagger-ui.css">\n')


@router.get("/redoc")
async def redoc(request: Request) -> Response:
    return _page(request, title="ReDoc", element="redoc",
                 script=f"{ASSETS_URL}/redoc.standalone.js", init=f"{INIT_URL}/redoc-init.js")


@router.get("/")
async def root() -> Response:
    return RedirectResponse("/ui", status_code=307)


def install_api_docs(app: FastAPI) -> None:
    """The pages, their bundles and start-up scripts (the app is built with
    ``docs_url=None, redoc_url=None``)."""
    app.include_router(router)
    app.mount(ASSETS_URL, StaticFiles(directory=BUNDLES), name="docs-assets")
    app.mount(INIT_URL, StaticFiles(directory=INIT_SCRIPTS), name="docs-init")
