"""The registry of initializers: name -> parameters, sampler, expected statistics.

One core, many names (as in ``jax.nn.initializers``): ``variance_scaling`` does the work
for the Keras family (glorot/he/lecun), ``kaiming``/``xavier`` for torch's. Each name
means what it means in the framework it comes from: Keras' ``he_normal`` is a normal
truncated at 2 std with the 0.87962566103423978 correction, torch's ``kaiming_normal`` a
plain normal. Each initializer is one class (``base.Initializer``) in the module of its
family; ``REGISTRY``, the spec schema's ``InitializerParams`` union, the Keras class
names and ``catalogue()`` are all derived from those classes.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field
from weightinit.core.initializers import base, keras_family, plain, structured, torch_family
from weightinit.core.initializers.base import (
    FanError,
    InitContext,
    Initializer,
    ResolvedInit,
    ResolveError,
)
from weightinit.core.initializers.distributions import (
    TRUNCATION_CORRECTION,
    constant_init,
    normal_init,
    truncated_normal_init,
    uniform_init,
)
from weightinit.core.initializers.keras_family import (
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    VarianceScaling,
    variance_scaling,
)
from weightinit.core.initializers.plain import (
    Constant,
    Normal,
    Ones,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    TruncNormal,
    Uniform,
    Zeros,
)
from weightinit.core.initializers.structured import (
    Dirac,
    Eye,
    Identity,
    Orthogonal,
    Sinusoidal,
    Sparse,
)
from weightinit.core.initializers.torch_family import (
    KaimingNormal,
    KaimingUniform,
    TorchDefault,
    XavierNormal,
    XavierUniform,
    calculate_gain,
)
from weightinit.core.rng.samplers import ConstantSampler

_FAMILIES = (plain, keras_family, torch_family, structured)

REGISTRY: dict[str, type[Initializer]] = {
    name: definition for family in _FAMILIES for name, definition in base.REGISTRY.items()
    if definition.__module__ == family.__name__
}
"""Every initializer by name, family by family (the catalogue's and the schema's order)."""
assert len(REGISTRY) == len(base.REGISTRY), "an initializer defined outside _FAMILIES"

INITIALIZER_NAMES: tuple[str, ...] = tuple(REGISTRY)

KERAS_CLASSES: dict[str, str] = {
    class_name: name for name, definition in REGISTRY.items()
    for class_name in definition.keras_classes
}
"""Keras 3 initializer classes (and their long aliases) to our names."""

KERAS_IDS: dict[str, str] = {
    keras_id: definition.keras_classes[0] for definition in REGISTRY.values()
    for keras_id in (definition.model_fields["name"].default, *definition.keras_ids)
    if definition.keras_classes
}
"""``keras.initializers.get``'s string identifiers to Keras class names: every class's
snake_case name (our name for it) and Keras' short aliases (``"uniform"`` is Keras'
RandomUniform, not our ``uniform``)."""

_SPEC_ALIASES: dict[str, str] = {
    keras_id: name for name, definition in REGISTRY.items()
    for keras_id in definition.keras_ids if keras_id not in REGISTRY
}
"""Keras' short names that are not names of ours (``zero``, ``one``), in a spec."""


def from_keras_config(obj: dict[str, Any]) -> dict[str, Any]:
    """Translate ``{"class_name": ..., "config": {...}}`` to our name and parameters.

    The request seed governs: a ``seed`` inside the Keras config is dropped. (An imported
    ``keras_model`` reports it in the plan's warnings, ``core.keras_inits``; here, inside a
    validator, there is no plan to report it to.)
    """
    class_name = obj.get("class_name")
    if class_name not in KERAS_CLASSES:
        raise ValueError(
            f"unknown Keras initializer class {class_name!r}; known: {sorted(KERAS_CLASSES)}"
        )
    config = dict(obj.get("config") or {})
    config.pop("seed", None)
    # Keras 3 serialises VarianceScaling's axis options (None unless set by EinsumDense);
    # fans here come from the tensor (or a tensor layer's fan_in/fan_out) instead.
    for axes in ("input_axes", "output_axes"):
        if config.get(axes) is not None:
            raise ValueError(
                f"Keras {axes} is not supported; give fan_in/fan_out on a tensor layer"
            )
        config.pop(axes, None)
    name = KERAS_CLASSES[class_name]
    if name == "truncated_normal":  # Keras: stddev, cut at mean +- 2 stddev, default 0.05
        mean = config.pop("mean", 0.0)
        std = config.pop("stddev", 0.05)  # validated (no booleans) by the model
        return {"name": name, "mean": mean, "std": std, **config}
    return {"name": name, **config}


def _normalise(value: Any) -> Any:
    """Accept a bare name, an object with ``name``, or a Keras config object."""
    if isinstance(value, str):
        return {"name": _SPEC_ALIASES.get(value, value)}
    if isinstance(value, dict) and "class_name" in value and "name" not in value:
        try:
            return from_keras_config(value)
        except (TypeError, OverflowError) as error:  # e.g. a list as class_name: a 422
            raise ValueError(f"not a Keras initializer config: {error}") from None
    return value


InitializerParams = Annotated[
    Union[tuple(REGISTRY.values())],  # type: ignore[valid-type]  # noqa: UP007
    Field(discriminator="name"),
    BeforeValidator(_normalise),
]
"""An initializer in a spec: a name, ``{"name": ..., params}`` or a Keras config."""


# torch's initializers that warn "Initializing zero-element tensors is a no-op".
_WARN_ON_EMPTY = frozenset({"kaiming_uniform", "kaiming_normal", "torch_default"})


def resolve_empty(params: Initializer, resolved: ResolvedInit | None) -> ResolvedInit:
    """A zero-element tensor: nothing to draw, so fans that are missing or zero do not
    matter (torch computes them and draws nothing); torch's no-op warning is kept."""
    if resolved is None:
        resolved = ResolvedInit(params.model_dump(), ConstantSampler(0.0), 0.0, 0.0)
    if params.name in _WARN_ON_EMPTY:
        note = "Initializing zero-element tensors is a no-op (torch's warning)"
        resolved = replace(resolved, warnings=(*resolved.warnings, note))
    return resolved


def resolve(params: Initializer, ctx: InitContext) -> ResolvedInit:
    """Bind validated initializer parameters to a tensor (raises ``ResolveError``)."""
    empty = math.prod(ctx.shape) == 0
    try:
        resolved = params.resolve(ctx)
    except (FanError, ZeroDivisionError) as error:
        # Fans, means and variances of no elements at all (an eye of 0 x n) only matter
        # when there are elements to draw.
        if empty:
            return resolve_empty(params, None)
        if isinstance(error, FanError):
            raise
        raise ResolveError(f"{params.name}: {error}") from None
    except ResolveError:
        raise
    except OverflowError:  # its text is the C library's errno tuple: say it in words
        raise ResolveError(f"{params.name}: parameters too large, a derived value "
                           "overflows") from None
    except ValueError as error:
        # Finite parameters whose derived numbers overflow (e.g. high - low): bad input.
        raise ResolveError(f"{params.name}: {error}") from None
    if not (math.isfinite(resolved.expected_mean) and math.isfinite(resolved.expected_variance)):
        raise ResolveError(f"{params.name}: parameters too large, the variance overflows")
    return resolve_empty(params, resolved) if empty else resolved


def catalogue() -> list[dict[str, Any]]:
    """The registry as ``GET /v1/initializers`` lists it: parameters, defaults, formula."""
    entries = []
    for name, definition in REGISTRY.items():
        schema = definition.model_json_schema()
        properties = {k: v for k, v in schema.get("properties", {}).items() if k != "name"}
        entries.append(
            {
                "name": name,
                "origin": definition.origin,
                "formula": definition.formula,
                "parameters": properties,
                "required": [r for r in schema.get("required", []) if r != "name"],
            }
        )
    return entries


__all__ = [
    "INITIALIZER_NAMES", "KERAS_CLASSES", "KERAS_IDS", "REGISTRY", "TRUNCATION_CORRECTION",
    "Constant", "Dirac", "Eye", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform",
    "Identity", "InitContext", "Initializer", "InitializerParams", "KaimingNormal",
    "KaimingUniform", "LecunNormal", "LecunUniform", "Normal", "Ones", "Orthogonal",
    "RandomNormal", "RandomUniform", "ResolveError", "ResolvedInit", "Sinusoidal", "Sparse",
    "TorchDefault", "TruncNormal", "TruncatedNormal", "Uniform", "VarianceScaling",
    "XavierNormal",
    "XavierUniform", "Zeros",
    "calculate_gain", "catalogue", "constant_init", "from_keras_config", "normal_init",
    "resolve", "truncated_normal_init", "uniform_init", "variance_scaling",
]
