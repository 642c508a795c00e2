"""POST bodies are JSON, and say so.

A web page may send a form or ``text/plain`` body to any origin without a CORS
preflight; requiring ``Content-Type: application/json`` means a cross-site page cannot
make the server generate anything unless CORS allows its origin.
"""

from __future__ import annotations

from fastapi import Request
from weightinit.service.server.errors import ApiError

JSON = "application/json"


async def require_json(request: Request) -> None:
    """POST bodies must say ``Content-Type: application/json`` (415 otherwise): a web
    page can send other types across origins without asking (a form, ``text/plain``)."""
    if request.method != "POST":
        return
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != JSON:
        got = f"got {content_type!r}" if content_type else "none was given"
        raise ApiError(415, "unsupported_media_type",
                       f"the body must be the JSON spec with Content-Type: application/json "
                       f"({got})", [{"loc": [], "msg": "Content-Type must be application/json"}])
