"""What every layer shares: the request base model and the expansion into tensor plans.

A layer expands into ``TensorPlan``s: full names, shapes, dtypes, fans and resolved
initializers in the spec's convention. Layer modules only say which tensors a layer has
and their defaults; naming, fans lookup, initializer resolution and error locations are
done here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from weightinit.core.conventions import Convention, Override
from weightinit.core.dtypes import DType
from weightinit.core.errors import LimitError, Loc, SpecError
from weightinit.core.fans import Fans
from weightinit.core.initializers import (
    InitContext,
    InitializerParams,
    ResolvedInit,
    ResolveError,
    resolve,
)

Size = Annotated[StrictInt, Field(ge=1, description="a positive integer size")]
# A size torch accepts as 0 (nn.Linear(0, n), a (0, d) embedding): an empty tensor.
Extent = Annotated[StrictInt, Field(ge=0, description="a size; 0 makes an empty tensor")]
Count = Annotated[StrictInt, Field(ge=0)]
# A shape's sizes: at most 8, and validation stops at the first bad one, so a hostile
# list of 100 000 items costs one error, not 100 000 (fail_fast).
Dims = Annotated[list[Extent], Field(max_length=8, fail_fast=True)]
LayerName = Annotated[
    str,
    Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_\-.:/]+$",
          description="the layer's name, as in the framework's module or layer name"),
]


class LayerBase(BaseModel):
    """Fields every layer has: its name and an optional dtype for its tensors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: LayerName
    dtype: DType | None = Field(None, description="overrides the spec's dtype for this layer")


@dataclass(frozen=True)
class TensorPlan:
    """One tensor of the model, fully resolved, before any value is generated."""

    name: str
    layer: str
    layer_type: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    init: ResolvedInit
    fans: Fans
    overrides: tuple[Override, ...] = ()
    loc: Loc = ()


class TensorBudget:
    """How many tensors one expansion of a request may plan in all. A layer whose tensor
    count grows with an option (an lstm's ``num_layers``) is refused as soon as it passes
    the limit, instead of after planning every tensor: a hostile request costs no more
    than the largest allowed one."""

    def __init__(self, limit: int, loc: Loc) -> None:
        self.limit = limit
        self.loc = loc  # what a refusal names: the whole model, not the layer it stopped at
        self.planned = 0

    def spend(self, at: Loc, count: int = 1) -> None:
        """Count ``count`` tensors of the layer at ``at``; past the limit, refuse."""
        self.planned += count
        if self.planned > self.limit:
            where = ".".join(str(part) for part in at)
            raise LimitError(self.loc, f"more tensors than the limit {self.limit} "
                             f"(counting stopped at {where})")


@dataclass(frozen=True)
class Expansion:
    """Where a layer sits: convention (what its tensors are called, laid out and
    initialized with), dtype, name prefix and location in the request; ``budget``, shared
    by every child, caps the tensors planned in all."""

    convention: Convention
    dtype: str
    prefix: str = ""
    loc: Loc = ()
    depth: int = 0
    extras: dict[str, object] = field(default_factory=dict)
    budget: TensorBudget | None = None
    # Resolved initializers by (initializer object, shape, fans), shared by every child:
    # a repeat's copies resolve each of their tensors once, not once per copy. The entry
    # keeps the initializer object alive, so its id is not reused while the map lives.
    resolved: dict[tuple[int, tuple[int, ...], Fans], tuple[BaseModel, ResolvedInit]] | None = (
        None)

    def child(self, prefix: str, loc: Loc) -> Expansion:
        # Called once per layer of a request: the constructor directly, as
        # ``dataclasses.replace`` costs a fifth of planning a large spec.
        return Expansion(self.convention, self.dtype, self.prefix + prefix, self.loc + loc,
                         self.depth + 1, self.extras, self.budget, self.resolved)

    def expect(self, count: int) -> None:
        """Refuse now if ``count`` more tensors would pass the budget: for a layer that
        knows how many it will plan before planning them (memory stays small)."""
        if self.budget is not None and self.budget.planned + count > self.budget.limit:
            self.budget.spend(self.loc, count)

    def layer_path(self, layer: LayerBase) -> str:
        return self.prefix + layer.name

    def tensor(
        self,
        layer: LayerBase,
        role: str,
        local_name: str,
        shape: Sequence[int],
        init: BaseModel | None,
        default: BaseModel,
        *,
        init_field: str,
        fans: Fans | None = None,
        overrides: Sequence[Override] = (),
        dtype: str | None = None,
        layer_type: str | None = None,
    ) -> TensorPlan:
        """Plan one tensor named ``<prefix><layer><sep><local_name>`` (initializer ``init``
        if the request gave one, else the convention's ``default``)."""
        if self.budget is not None:
            self.budget.spend(self.loc)
        shape = tuple(int(s) for s in shape)
        fans = fans or self.convention.layout.fans(shape)
        loc = (*self.loc, init_field)
        chosen = init if init is not None else default
        key = (id(chosen), shape, fans)
        known = self.resolved.get(key) if self.resolved is not None else None
        if known is not None:
            resolved = known[1]
        else:
            try:
                resolved = resolve(chosen, InitContext(shape, fans, self.convention))
            except ResolveError as error:
                field_loc = (*loc, error.field) if error.field and init is not None else loc
                raise SpecError(field_loc, error.msg) from None
            if self.resolved is not None:
                self.resolved[key] = (chosen, resolved)
        path = self.layer_path(layer)
        return TensorPlan(
            name=f"{path}{self.convention.separator}{local_name}",
            layer=path,
            layer_type=layer_type or getattr(layer, "type", "layer"),
            role=role,
            shape=shape,
            dtype=dtype or layer.dtype or self.dtype,
            init=resolved,
            fans=fans,
            overrides=tuple(overrides),
            loc=loc,
        )


def check(condition: bool, loc: Loc, msg: str) -> None:
    """Raise a ``SpecError`` at ``loc`` unless ``condition`` holds (never ``assert``)."""
    if not condition:
        raise SpecError(loc, msg)


InitField = InitializerParams | None

IGNORED = Field(None, description="accepted and ignored: it does not change weights")
"""A framework constructor argument with no effect on the weights (``stride``,
``dropout``, ``eps``): accepted so a module's arguments can be sent as they are."""
