"""Normalization layers: ``layer_norm``, ``rms_norm``, ``batch_norm``, ``group_norm``.

Names and defaults are the convention's (``core.conventions``); every default is a
constant, as in torch and Keras: scales one, shifts zero, running means zero, running
variances one.

| type        | torch (``state_dict`` keys)                       | keras (weight paths)       |
|-------------|---------------------------------------------------|----------------------------|
| layer_norm  | ``weight``, ``bias`` (normalized_shape)           | ``gamma``, ``beta``        |
| rms_norm    | ``weight`` (normalized_shape)                     | ``scale``                  |
| batch_norm  | ``weight``, ``bias``, ``running_mean``,           | ``gamma``, ``beta``,       |
|             | ``running_var``, ``num_batches_tracked`` (int64)  | ``moving_mean``,           |
|             |                                                   | ``moving_variance``        |
| group_norm  | ``weight``, ``bias`` (num_channels)               | ``gamma``, ``beta``        |

Initializer overrides: ``weight_init`` (scale: weight/gamma/scale), ``bias_init`` (shift:
bias/beta), and for ``batch_norm`` ``running_mean_init`` / ``running_var_init``.
``num_batches_tracked`` is a counter, always an int64 zero whatever the dtype.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
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


def _scale_and_shift(
    ctx: Expansion,
    layer: LayerBase,
    shape: tuple[int, ...],
    scale: bool,
    shift: bool,
    rms: bool = False,
) -> list[TensorPlan]:
    """The affine pair: torch ``weight``/``bias``, keras ``gamma`` (RMS: ``scale``)/``beta``."""
    rules = ctx.convention.norm
    plans = []
    if scale:
        plans.append(ctx.tensor(
            layer, "weight", rules.rms_scale if rms else rules.scale, shape, layer.weight_init,
            rules.scale_init, init_field="weight_init",
        ))
    if shift:
        plans.append(ctx.tensor(
            layer, "bias", rules.shift, shape, layer.bias_init, rules.shift_init,
            init_field="bias_init",
        ))
    return plans


def _normalized_shape(value: int | list[int], ctx: Expansion) -> tuple[int, ...]:
    """torch's ``normalized_shape``: one trailing size or a non-empty list of them."""
    if isinstance(value, int):
        return (value,)
    check(len(value) > 0, (*ctx.loc, "normalized_shape"), "normalized_shape must not be empty")
    return tuple(value)


class LayerNorm(LayerBase):
    """torch ``nn.LayerNorm`` / Keras ``LayerNormalization`` over the trailing
    ``normalized_shape`` (Keras: ``axis`` the last ``len(normalized_shape)`` axes)."""

    type: Literal["layer_norm"] = "layer_norm"
    normalized_shape: Extent | Dims
    elementwise_affine: bool = True
    bias: bool = Field(True, description="with a shift (torch bias, Keras center)")
    eps: Any = IGNORED
    weight_init: InitField = None
    bias_init: InitField = None

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        shape = _normalized_shape(self.normalized_shape, ctx)
        affine = self.elementwise_affine
        return _scale_and_shift(ctx, self, shape, affine, affine and self.bias)


class RMSNorm(LayerBase):
    """torch ``nn.RMSNorm`` (``weight``) / Keras ``RMSNormalization`` (``scale``)."""

    type: Literal["rms_norm"] = "rms_norm"
    normalized_shape: Extent | Dims
    elementwise_affine: bool = True
    eps: Any = IGNORED
    weight_init: InitField = None

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        shape = _normalized_shape(self.normalized_shape, ctx)
        return _scale_and_shift(ctx, self, shape, self.elementwise_affine, False, rms=True)


class GroupNorm(LayerBase):
    """torch ``nn.GroupNorm`` / Keras ``GroupNormalization``: per-channel affine."""

    type: Literal["group_norm"] = "group_norm"
    num_groups: Size
    num_channels: Extent
    affine: bool = True
    eps: Any = IGNORED
    weight_init: InitField = None
    bias_init: InitField = None

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        check(
            self.num_channels % self.num_groups == 0,
            (*ctx.loc, "num_groups"),
            f"num_channels ({self.num_channels}) must be divisible by num_groups "
            f"({self.num_groups})",
        )
        shape = (self.num_channels,)
        return _scale_and_shift(ctx, self, shape, self.affine, self.affine)


class BatchNorm(LayerBase):
    """torch ``nn.BatchNorm1d/2d/3d`` (one type: the weights do not depend on the rank) /
    Keras ``BatchNormalization``, with the running statistics as tensors."""

    type: Literal["batch_norm"] = "batch_norm"
    num_features: Extent
    affine: bool = True
    track_running_stats: bool = True
    eps: Any = IGNORED
    momentum: Any = IGNORED
    weight_init: InitField = None
    bias_init: InitField = None
    running_mean_init: InitField = Field(None, description="running_mean / moving_mean")
    running_var_init: InitField = Field(
        None, description="running_var / moving_variance"
    )

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        rules = ctx.convention.norm
        check(
            rules.optional_running_stats or self.track_running_stats,
            (*ctx.loc, "track_running_stats"),
            "Keras' BatchNormalization always keeps moving statistics",
        )
        shape = (self.num_features,)
        plans = _scale_and_shift(ctx, self, shape, self.affine, self.affine)
        if not self.track_running_stats:
            return plans
        plans.append(ctx.tensor(
            self, "running_mean", rules.running_mean, shape, self.running_mean_init,
            rules.mean_init, init_field="running_mean_init",
        ))
        plans.append(ctx.tensor(
            self, "running_var", rules.running_var, shape, self.running_var_init,
            rules.var_init, init_field="running_var_init",
        ))
        if rules.counter is not None:
            plans.append(ctx.tensor(
                self, "num_batches_tracked", rules.counter, (), None, rules.counter_init,
                init_field="track_running_stats", dtype="int64",
            ))
        return plans
