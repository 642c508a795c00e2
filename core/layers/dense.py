"""Dense and convolution layers: ``linear``, ``conv1d``, ``conv2d``, ``conv3d``.

torch: ``weight`` (out, in) / (out, in/g, *k), transposed (in, out/g, *k), and ``bias``,
both ``torch_default`` (U(+-1/sqrt(fan_in)), the bias with the weight's fan_in).
keras: ``kernel`` (in, out) / (*k, in/g, out), transposed (*k, out, in), ``glorot_uniform``,
and ``bias`` ``zeros``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from weightinit.core.fans import conv_shape, dense_shape
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
from weightinit.core.layers.tensors import GLOROT_UNIFORM, TORCH_DEFAULT, ZEROS


def weight_and_bias(
    ctx: Expansion,
    layer: LayerBase,
    weight_shape: tuple[int, ...],
    bias_shape: tuple[int, ...] | None,
) -> list[TensorPlan]:
    """The weight (``weight``/``kernel``) and optional bias of a dense or conv layer."""
    torch = ctx.convention == "torch"
    weight = ctx.tensor(
        layer, "weight", "weight" if torch else "kernel", weight_shape,
        layer.weight_init, TORCH_DEFAULT if torch else GLOROT_UNIFORM, init_field="weight_init",
    )
    plans = [weight]
    if bias_shape is not None:
        plans.append(
            ctx.tensor(
                layer, "bias", "bias", bias_shape, layer.bias_init,
                TORCH_DEFAULT if torch else ZEROS, init_field="bias_init",
                # torch draws the bias from the weight's fan_in; keras uses the bias shape.
                fans=weight.fans if torch else None,
            )
        )
    return plans


class Linear(LayerBase):
    """A fully connected layer (torch ``nn.Linear``, Keras ``Dense``)."""

    type: Literal["linear"] = "linear"
    in_features: Extent
    out_features: Extent
    bias: bool = True
    weight_init: InitField = None
    bias_init: InitField = None

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        shape = dense_shape(self.in_features, self.out_features, ctx.convention)
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
            not (self.transposed and self.groups > 1 and ctx.convention == "keras"),
            (*ctx.loc, "groups"),
            "Keras' ConvTranspose layers have no groups",
        )
        shape = conv_shape(
            self.in_channels, self.out_channels, self.kernel(ctx), self.groups,
            self.transposed, ctx.convention,
        )
        return weight_and_bias(ctx, self, shape, (self.out_channels,) if self.bias else None)
