"""A Keras initializer from a model's JSON, as weightinit initializer parameters.

Keras serialises initializers as ``{"class_name": "GlorotUniform", "config": {...}}``;
hand-written configs may use Keras' string identifiers (``"uniform"``, which in Keras
means ``RandomUniform(-0.05, 0.05)``, ``"normal"`` meaning ``RandomNormal(0, 0.05)``).
Both are read with Keras' meaning. The request seed governs: a ``seed`` in the config is
dropped and reported as a warning. ``input_axes``/``output_axes`` (VarianceScaling's
explicit fan axes, set by EinsumDense) are returned for the caller to turn into fans.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from weightinit.core.errors import Loc, SpecError
from weightinit.core.fans import Fans
from weightinit.core.initializers import (
    KERAS_IDS,
    InitializerParams,
    from_keras_config,
)

_PARAMS: TypeAdapter[Any] = TypeAdapter(InitializerParams)


def axes_fans(shape: Sequence[int], input_axes: Sequence[int],
              output_axes: Sequence[int]) -> Fans:
    """Keras ``compute_fans`` with both axis lists: the products of the sizes on them."""
    return Fans(math.prod(shape[a] for a in input_axes),
                math.prod(shape[a] for a in output_axes))


@dataclass(frozen=True)
class KerasInit:
    """A validated initializer and the fan axes its config names, if any."""

    params: BaseModel
    input_axes: tuple[int, ...] | None = None
    output_axes: tuple[int, ...] | None = None

    def explicit_fans(self, shape: Sequence[int]) -> Fans | None:
        """The fans from the config's axes when it gives both (as Keras reads them), else
        ``None``; ``ValueError`` if an axis is not in the shape."""
        if self.input_axes is None or self.output_axes is None:
            return None
        try:
            return axes_fans(shape, self.input_axes, self.output_axes)
        except IndexError:
            raise ValueError(
                f"input_axes {list(self.input_axes)} / output_axes "
                f"{list(self.output_axes)} do not fit a tensor of shape {list(shape)}"
            ) from None


def _axes(config: dict[str, Any], key: str, loc: Loc) -> tuple[int, ...] | None:
    value = config.pop(key, None)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, list) and all(
        isinstance(a, int) and not isinstance(a, bool) for a in value
    ):
        return tuple(value)
    raise SpecError((*loc, "config", key), "expected an integer or a list of integers")


def keras_initializer(value: Any, loc: Loc, owner: str, warnings: list[str]) -> KerasInit:
    """Read one Keras initializer config at ``loc`` (``owner`` names it in warnings)."""
    if isinstance(value, str):
        value = {"class_name": KERAS_IDS.get(value, value), "config": {}}
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        raise SpecError(loc, "expected a Keras initializer: a name or {class_name, config}")
    class_name = value["class_name"]
    config = value.get("config") or {}
    if not isinstance(config, dict):
        raise SpecError((*loc, "config"), "expected an object")
    config = dict(config)
    seed = config.pop("seed", None)
    if seed is not None:
        warnings.append(
            f"{owner}: the Keras initializer seed {seed!r} is ignored; the request seed "
            "governs"
        )
    input_axes = _axes(config, "input_axes", loc)
    output_axes = _axes(config, "output_axes", loc)
    try:
        translated = from_keras_config({"class_name": class_name, "config": config})
    except ValueError as error:
        raise SpecError((*loc, "class_name"), str(error)) from None
    try:
        params = _PARAMS.validate_python(translated)
    except ValidationError as error:
        first = error.errors()[0]
        # The first loc element is the union tag (our initializer name), not a Keras key.
        field = [part for part in first["loc"][1:] if isinstance(part, str | int)]
        raise SpecError((*loc, "config", *field), first["msg"]) from None
    return KerasInit(params, input_axes, output_axes)
