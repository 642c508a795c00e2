"""RFC 8259 JSON out: no ``NaN`` or ``Infinity`` tokens, whatever the numbers.

A statistic of degenerate data (the variance of values near the largest float64, a
histogram of a zero-width distribution) can be non-finite; Python's ``json`` would
write ``Infinity``, which ``JSON.parse`` and strict parsers reject. ``dumps`` writes
such a number as ``null`` and says where in the document's ``warnings`` list (as a
JSON pointer, RFC 6901: tensor names contain dots).
"""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(document: Any) -> bytes:
    """``document`` as strict JSON (UTF-8); non-finite numbers become null, each named
    in ``document["warnings"]`` when the document is an object."""
    try:
        return json.dumps(document, ensure_ascii=False, allow_nan=False).encode()
    except ValueError:
        pass
    found: list[str] = []
    clean = _replace_non_finite(document, (), found)
    if isinstance(clean, dict):
        warnings = list(clean.get("warnings") or [])
        warnings += [f"{path}: not a finite number (overflow or degenerate data), "
                     "reported as null" for path in found]
        clean["warnings"] = warnings
    return json.dumps(clean, ensure_ascii=False, allow_nan=False).encode()


def _replace_non_finite(value: Any, path: tuple[str | int, ...], found: list[str]) -> Any:
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        found.append("".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path))
        return None
    if isinstance(value, dict):
        return {key: _replace_non_finite(item, (*path, key), found)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_non_finite(item, (*path, index), found)
                for index, item in enumerate(value)]
    return value
