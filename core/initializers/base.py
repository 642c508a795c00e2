"""What every initializer shares: the parameter model it is defined as, the tensor it is
bound to, what binding returns, and the registry that collects the definitions.

An initializer is one class: its parameters (pydantic fields, ``name`` a literal), its
``formula`` and ``origin`` (the framework whose semantics it follows), and ``resolve``,
which binds it to a tensor. Defining the class registers it; the registry, the schema
union of a spec's initializer field and the ``GET /v1/initializers`` catalogue are derived
from the registered classes (``weightinit.core.initializers``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo
from pydantic_core import PydanticCustomError
from weightinit.core.fans import Fans
from weightinit.core.rng.samplers import Sampler

if TYPE_CHECKING:  # conventions are built from initializers: a type only here
    from weightinit.core.conventions import Convention

Origin = Literal["torch", "keras", "common"]


class ResolveError(ValueError):
    """An initializer cannot be applied to this tensor; ``field`` names the culprit."""

    def __init__(self, msg: str, field: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.field = field


class FanError(ResolveError):
    """The initializer reads a fan the tensor does not have (or one of zero). Harmless on a
    zero-element tensor, where nothing is drawn (``weightinit.core.initializers.resolve``)."""


def _not_a_boolean(value: Any) -> Any:
    # Pydantic reads a JSON true as the float 1.0; torch refuses ``negative_slope=True``
    # and so do we: no initializer parameter is a boolean.
    if isinstance(value, bool):
        raise PydanticCustomError(
            "bool_not_number", "a number is needed here, not the boolean {value}",
            {"value": "true" if value else "false"},
        )
    return value


Real = Annotated[float, BeforeValidator(_not_a_boolean)]
"""A float parameter: an integer or a float in JSON, never a boolean."""


@dataclass(frozen=True)
class InitContext:
    """What an initializer may look at: the tensor's shape, fans and convention (its
    layout, for initializers that read axes)."""

    shape: tuple[int, ...]
    fans: Fans
    convention: Convention


@dataclass(frozen=True)
class ResolvedInit:
    """An initializer bound to one tensor: every parameter, the sampler, expectations."""

    config: dict[str, Any]
    sampler: Sampler
    expected_mean: float
    expected_variance: float
    derived: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what the framework would warn about, for the plan


class Initializer(BaseModel):
    """Base of every initializer definition: a subclass whose ``name`` has a default (its
    literal) registers; one without (a shared base such as ``_Kaiming``) does not."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    name: str
    formula: ClassVar[str]
    origin: ClassVar[Origin]
    # Keras 3 class names (canonical first) and string identifiers that mean this one.
    keras_classes: ClassVar[tuple[str, ...]] = ()
    keras_ids: ClassVar[tuple[str, ...]] = ()

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        """Bind these parameters to one tensor (raises ``ResolveError``)."""
        raise NotImplementedError

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        name = cls.model_fields["name"].default
        if isinstance(name, str):
            if name in REGISTRY:
                raise TypeError(f"{cls.__name__}: initializer {name!r} is already defined")
            REGISTRY[name] = cls


REGISTRY: dict[str, type[Initializer]] = {}
"""Every initializer, by name, in definition order."""


def not_below(value: float, info: ValidationInfo, lower_field: str) -> float:
    """Check an upper bound against its already validated lower bound, so the error's
    ``loc`` names the upper bound's field."""
    lower = info.data.get(lower_field)
    if lower is not None and lower > value:
        raise ValueError(f"{lower_field} ({lower}) must not exceed {info.field_name} ({value})")
    return value


def fan(ctx: InitContext, mode: str) -> float:
    """The fan a variance-scaling mode divides by; rejects tensors without the fans it reads
    (fan_in and fan_out modes read one, so a vector with just that fan given will do)."""
    fan_in, fan_out = ctx.fans.fan_in, ctx.fans.fan_out
    reads = {"fan_in": (fan_in,), "fan_out": (fan_out,)}.get(mode, (fan_in, fan_out))
    if None in reads:
        wanted, give = ("fans", "fan_in/fan_out") if len(reads) == 2 else (mode, mode)
        raise FanError(
            f"mode {mode!r} needs {wanted}, and a tensor of shape {list(ctx.shape)} has none "
            f"under the torch convention (it needs at least 2 dimensions); give {give}",
        )
    if any(f <= 0 for f in reads):
        raise FanError(f"fans must be positive, got fan_in={fan_in}, fan_out={fan_out}")
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    return math.sqrt(fan_in * fan_out)  # fan_geo_avg
