"""Validation errors in plain words, with "did you mean" for a misspelt name.

Pydantic says ``Input tag 'kaiming_unifrom' found using 'name' does not match any of the
expected tags: ...``; a user needs "unknown initializer 'kaiming_unifrom'; did you mean
'kaiming_uniform'?" and the list of valid names. ``plain_message`` rewrites the errors
about names (layer types, initializers, fields) and leaves the others as pydantic wrote
them. Used by the HTTP API and the CLI alike (``error_paths``); no web imports.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel


@cache
def _layer_models() -> dict[str, type[BaseModel]]:
    from weightinit.core.layers import LAYER_TYPES

    return {tag: model for model in LAYER_TYPES
            for tag in get_args(model.model_fields["type"].annotation)}


@cache
def _initializer_models() -> dict[str, type[BaseModel]]:
    from weightinit.core.initializers import REGISTRY

    return dict(REGISTRY)


@cache
def _named_models() -> dict[str, type[BaseModel]]:
    """Request models that are a field of the spec, by that field's name."""
    from weightinit.core.spec import Shard, Spec

    return {"": Spec, "shard": Shard}


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or nothing if none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _listing(choices: Sequence[str]) -> str:
    return ", ".join(choices)


def _unknown_tag(discriminator: str, tag: Any) -> str:
    if discriminator == "type":
        names = list(_layer_models())
        kind, plural = "layer type", "layer types"
    else:
        names = list(_initializer_models())
        kind, plural = "initializer", "initializers"
    hint = did_you_mean(tag, names) if isinstance(tag, str) else ""
    return f"unknown {kind} {tag!r}{hint}; the {plural} are: {_listing(names)}"


def _model_of_field(loc: Sequence[Any]) -> tuple[str, type[BaseModel]] | None:
    """The model an unknown field was sent to, read from pydantic's raw ``loc`` (which
    still carries the union tag: ``layers.0.linear.out_feature``)."""
    parent = loc[-2] if len(loc) >= 2 else ""
    if isinstance(parent, str):
        if parent in _layer_models():
            return f"a {parent} layer", _layer_models()[parent]
        if parent in _initializer_models():
            return f"the {parent} initializer", _initializer_models()[parent]
        if parent in _named_models() and len(loc) <= 2:
            return (parent or "the spec"), _named_models()[parent]
    return None


def plain_message(error: dict[str, Any]) -> str:
    """The message of one pydantic error, in plain words where it is about a name."""
    kind, ctx = error.get("type"), error.get("ctx") or {}
    loc = list(error.get("loc", ()))
    if kind == "union_tag_invalid":
        return _unknown_tag(str(ctx.get("discriminator", "")).strip("'\""), ctx.get("tag"))
    if kind == "union_tag_not_found":
        discriminator = str(ctx.get("discriminator", "")).strip("'\"")
        if discriminator == "type":
            return f'a layer needs a "type": one of {_listing(list(_layer_models()))}'
        return f'an initializer needs a "name": one of {_listing(list(_initializer_models()))}'
    if kind == "extra_forbidden" and loc and isinstance(loc[-1], str):
        owner = _model_of_field(loc)
        if owner is not None:
            what, model = owner
            fields = [name for name in model.model_fields if name not in ("type",)]
            return (f"unknown field {loc[-1]!r}{did_you_mean(loc[-1], fields)}; the fields "
                    f"of {what} are: {_listing(fields)}")
        return f"unknown field {loc[-1]!r}"
    return str(error.get("msg", "invalid"))
