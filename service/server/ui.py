"""``/ui``: the browser page, served from ``static/ui/`` with Starlette's ``StaticFiles``.

The page is static HTML, JavaScript and hand-written SVG charts (nothing from a CDN, so it
works air-gapped) that calls ``/v1/plan``, ``/v1/report``, ``/v1/diagnose`` and
``/v1/init`` of the same server. ``GET /ui`` is the page itself (its links are relative to
``/ui``: ``ui/app.js``); ``/ui/<file>`` its files. Every answer carries the page's own
content security policy and is revalidated on each load (``no-cache``; ``StaticFiles``
answers a matching ``If-None-Match`` with 304).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

PAGE_DIRECTORY = Path(__file__).parent / "static" / "ui"
PAGE = "index.html"
URL = "/ui"
# The page loads only its own files and talks only to its own server.
UI_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# By suffix, not from the platform's MIME registry (which on some Windows setups maps
# .js to text/plain, a script browsers then refuse under nosniff).
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}


class PageFiles(StaticFiles):
    """The page's folder: each file with the page's CSP, ``no-cache`` and its media type."""

    def file_response(self, full_path: PathLike, stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["content-security-policy"] = UI_CSP
        response.headers["cache-control"] = "no-cache"
        media_type = MEDIA_TYPES.get(Path(full_path).suffix)
        if media_type is not None and response.status_code != 304:
            response.headers["content-type"] = media_type
        return response


def install_ui(app: FastAPI) -> None:
    """``GET /ui`` (the page) and ``/ui/<file>`` (its scripts, styles and examples)."""
    files = PageFiles(directory=PAGE_DIRECTORY)

    @app.get(URL, include_in_schema=False)
    async def page(request: Request) -> Response:
        return await files.get_response(PAGE, request.scope)

    app.mount(URL, files, name="ui")
