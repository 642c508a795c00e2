"""The escape hatch (``tensor``: any shape, any initializer) and ``repeat``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from core.fans import explicit_fans
from core.initializer_params import InitializerParams
from core.layers.base import (
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
    from core.layers import Layer


class TensorLayer(LayerBase):
    """One explicit tensor: ``name`` is its full name (under any ``repeat`` prefix)."""

    type: Literal["tensor"] = "tensor"
    name: Annotated[LayerName, Field(description="the tensor's full name, e.g. lm_head.weight")]
    shape: Dims
    init: InitializerParams
    fan_in: Size | None = Field(None, description="overrides the fan computed from the shape")
    fan_out: Size | None = Field(None, description="overrides the fan computed from the shape")

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        fans = explicit_fans(self.shape, ctx.convention, self.fan_in, self.fan_out)
        plan = ctx.tensor(
            self, "tensor", "", self.shape, self.init, self.init, init_field="init", fans=fans
        )
        # A tensor layer's name is already the tensor's full name: no separator suffix.
        return [_renamed(plan, ctx.prefix + self.name)]


def _renamed(plan: TensorPlan, name: str) -> TensorPlan:
    from dataclasses import replace

    return replace(plan, name=name, layer=name)


class Repeat(LayerBase):
    """``count`` copies of ``layers``, named ``name.i.`` (torch) or ``name_i/`` (keras)."""

    type: Literal["repeat"] = "repeat"
    count: Count
    layers: Annotated[list[Layer], Field(fail_fast=True)]  # first bad layer only

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        limit = int(ctx.extras.get("max_depth", 16))
        check(ctx.depth < limit, (*ctx.loc, "layers"), f"repeat nesting deeper than {limit}")
        plans: list[TensorPlan] = []
        for index in range(self.count):
            prefix = (
                f"{self.name}.{index}." if ctx.convention == "torch" else f"{self.name}_{index}/"
            )
            for position, layer in enumerate(self.layers):
                child = ctx.child(prefix, ("layers", position))
                if self.dtype is not None and layer.dtype is None:
                    layer = layer.model_copy(update={"dtype": self.dtype})
                plans.extend(layer.expand(child))
        return plans
