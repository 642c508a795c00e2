"""The line of a JSON document where a field sits, so the CLI can say ``spec.json:7``.

``line_of(text, loc)`` walks the document along ``loc`` (keys and list indices, as the
error ``details`` give them) and returns the 1-based line of the deepest part of the path
that exists: the key itself, or the object that lacks it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n"


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _SPACE:
        index += 1
    return index


def _members(text: str, index: int):
    """(key or list position, where the key/item starts, where its value starts) of the
    object or array at ``index``."""
    opening = text[index]
    index = _skip(text, index + 1)
    position = 0
    while index < len(text) and text[index] not in "}]":
        start = index
        if opening == "{":
            key, index = json.decoder.scanstring(text, index + 1)
            index = _skip(text, _skip(text, index) + 1)  # past the colon
            yield key, start, index
        else:
            yield position, start, index
            position += 1
        _, index = _DECODER.raw_decode(text, index)
        index = _skip(text, index)
        if index < len(text) and text[index] == ",":
            index = _skip(text, index + 1)


def line_of(text: str, loc: Sequence[str | int]) -> int | None:
    """The line of ``loc`` in the JSON ``text`` (the deepest existing part), or None if
    the text is not JSON."""
    try:
        index = _skip(text, 0)
        found = index
        for part in loc:
            if index >= len(text) or text[index] not in "{[":
                break
            for key, start, value in _members(text, index):
                if key == part:
                    found, index = start, value
                    break
            else:
                break
        return text.count("\n", 0, found) + 1
    except (ValueError, IndexError):
        return None
