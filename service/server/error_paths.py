"""Locations of validation errors as paths that exist in the JSON the user sent.

Pydantic's locations carry discriminated-union tags (``"linear"`` in
``layers.0.linear.in_features``) and union member names that are not keys of the body;
``validation_details`` drops them, so the HTTP API and the CLI name a field the same way
and a ``loc`` can always be followed in the body.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from weightinit.service.server.error_messages import plain_message

Loc = list[str | int]

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
        details.append({"loc": path, "msg": plain_message(error)})
    return details
