"""The escape hatch (``tensor``: any shape, any initializer) and ``repeat``."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field
from weightinit.core.conventions import Convention
from weightinit.core.initializers import InitializerParams
from weightinit.core.layers.base import (
    Count,
    Dims,
    Expansion,
    LayerBase,
    LayerName,
    Size,
    TensorPlan,
    check,
)

if TYPE_CHECKING:
    from weightinit.core.layers import Layer


class TensorLayer(LayerBase):
    """One explicit tensor: ``name`` is its full name (under any ``repeat`` prefix)."""

    type: Literal["tensor"] = "tensor"
    name: Annotated[LayerName, Field(description="the tensor's full name, e.g. lm_head.weight")]
    shape: Dims
    init: InitializerParams
    fan_in: Size | None = Field(None, description="overrides the fan computed from the shape")
    fan_out: Size | None = Field(None, description="overrides the fan computed from the shape")

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        fans = ctx.convention.layout.explicit_fans(self.shape, self.fan_in, self.fan_out)
        plan = ctx.tensor(
            self, "tensor", "", self.shape, self.init, self.init, init_field="init", fans=fans
        )
        # A tensor layer's name is already the tensor's full name: no separator suffix.
        full_name = ctx.prefix + self.name
        return [replace(plan, name=full_name, layer=full_name)]


class Repeat(LayerBase):
    """``count`` copies of ``layers``, named ``name.i.`` (torch) or ``name_i/`` (keras)."""

    type: Literal["repeat"] = "repeat"
    count: Count
    layers: Annotated[list[Layer], Field(fail_fast=True)]  # first bad layer only

    def prefix(self, index: int, convention: Convention) -> str:
        """The name prefix of copy ``index``: a torch ``ModuleList`` index or a Keras suffix."""
        return convention.repeat_name(self.name, index)

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        limit = int(ctx.extras.get("max_depth", 16))
        check(ctx.depth < limit, (*ctx.loc, "layers"), f"repeat nesting deeper than {limit}")
        plans: list[TensorPlan] = []
        for index in range(self.count):
            prefix = self.prefix(index, ctx.convention)
            for position, layer in enumerate(self.layers):
                child = ctx.child(prefix, ("layers", position))
                if self.dtype is not None and layer.dtype is None:
                    layer = layer.model_copy(update={"dtype": self.dtype})
                plans.extend(layer.expand(child))
        return plans
