"""Dense and convolution layers: ``linear``, ``conv1d``, ``conv2d``, ``conv3d``.

A weight and an optional bias of ``out`` units. Names, layouts and defaults are the
convention's (``core.conventions``): torch ``weight`` (out, in) / (out, in/g, *k) and
``bias``, both ``torch_default``; Keras ``kernel`` (in, out) / (*k, in/g, out),
``glorot_uniform``, and ``bias`` ``zeros``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from weightinit.core.conventions import Slot
from weightinit.core.layers.base import (
    IGNORED,
    Dims,
    Expansion,
    Extent,
    InitField,
    LayerBase,
    Size,
    TensorPlan,
    check,
)
from weightinit.core.layers.tensors import planned


def weight_and_bias(
    ctx: Expansion,
    layer: LayerBase,
    weight_shape: tuple[int, ...],
    bias_shape: tuple[int, ...] | None,
) -> list[TensorPlan]:
    """The weight (``weight``/``kernel``) and optional bias of a dense or conv layer."""
    rules = ctx.convention.dense
    slots = [Slot("weight", rules.weight, weight_shape, rules.weight_init, "weight_init")]
    if bias_shape is not None:
        # torch draws the bias from the weight's fan_in; keras uses the bias shape.
        slots.append(Slot("bias", "bias", bias_shape, rules.bias_init, "bias_init",
                          weight_fans=rules.bias_weight_fans))
    return planned(ctx, layer, slots)


class Linear(LayerBase):
    """A fully connected layer (torch ``nn.Linear``, Keras ``Dense``)."""

    type: Literal["linear"] = "linear"
    in_features: Extent
    out_features: Extent
    bias: bool = True
    weight_init: InitField = None
    bias_init: InitField = None

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        shape = ctx.convention.layout.dense_shape(self.in_features, self.out_features)
        return weight_and_bias(ctx, self, shape, (self.out_features,) if self.bias else None)


class Conv(LayerBase):
    """A convolution (torch ``nn.ConvNd``/``ConvTransposeNd``, Keras ``ConvND``)."""

    type: Literal["conv1d", "conv2d", "conv3d"]
    in_channels: Extent
    out_channels: Extent
    kernel_size: Extent | Dims
    groups: Size = 1
    bias: bool = True
    transposed: bool = False
    stride: Any = IGNORED
    padding: Any = Field(None, description="accepted and ignored")
    dilation: Any = Field(None, description="accepted and ignored")
    output_padding: Any = Field(None, description="accepted and ignored")
    padding_mode: Any = Field(None, description="accepted and ignored")
    weight_init: InitField = None
    bias_init: InitField = None

    @property
    def spatial_dims(self) -> int:
        return int(self.type[-2])

    def kernel(self, ctx: Expansion) -> tuple[int, ...]:
        if isinstance(self.kernel_size, int):
            return (self.kernel_size,) * self.spatial_dims
        check(
            len(self.kernel_size) == self.spatial_dims,
            (*ctx.loc, "kernel_size"),
            f"{self.type} needs {self.spatial_dims} kernel sizes, got {len(self.kernel_size)}",
        )
        return tuple(self.kernel_size)

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        for field in ("in_channels", "out_channels"):
            check(
                getattr(self, field) % self.groups == 0,
                (*ctx.loc, "groups"),
                f"{field} ({getattr(self, field)}) must be divisible by groups ({self.groups})",
            )
        check(
            ctx.convention.dense.grouped_transposed or not (self.transposed and self.groups > 1),
            (*ctx.loc, "groups"),
            "Keras' ConvTranspose layers have no groups",
        )
        shape = ctx.convention.layout.conv_shape(
            self.in_channels, self.out_channels, self.kernel(ctx), self.groups, self.transposed
        )
        return weight_and_bias(ctx, self, shape, (self.out_channels,) if self.bias else None)
