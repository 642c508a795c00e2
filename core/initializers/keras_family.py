"""Keras 3's variance-scaling family: ``variance_scaling`` does the work and
``glorot_*``, ``he_*``, ``lecun_*`` are fixed specializations of it (as in Keras and
``jax.nn.initializers``). Keras' "normal" here is truncated at 2 std with the
0.87962566103423978 correction, unlike torch's ``kaiming_normal``."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator
from weightinit.core.initializers.base import InitContext, Initializer, Real, ResolvedInit, fan
from weightinit.core.initializers.distributions import (
    TRUNCATION_CORRECTION,
    normal_init,
    truncated_normal_init,
    uniform_init,
)

Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
Distribution = Literal["uniform", "truncated_normal", "untruncated_normal", "normal"]


def variance_scaling(
    config: dict[str, Any], ctx: InitContext, scale: float, mode: str, distribution: str
) -> ResolvedInit:
    """Keras 3 VarianceScaling: s = scale / max(1, fan); uniform limit sqrt(3s);
    truncated std sqrt(s)/0.8796... cut at 2 std; untruncated std sqrt(s)."""
    divisor = max(1.0, fan(ctx, mode))
    variance = scale / divisor
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        return uniform_init(config, -limit, limit, limit=limit, fan=divisor)
    if distribution == "untruncated_normal":
        return normal_init(config, 0.0, math.sqrt(variance), fan=divisor)
    std = math.sqrt(variance) / TRUNCATION_CORRECTION
    return truncated_normal_init(config, 0.0, std, -2.0 * std, 2.0 * std, fan=divisor)


class VarianceScaling(Initializer):
    name: Literal["variance_scaling"] = "variance_scaling"
    scale: Real = Field(1.0, gt=0)
    mode: Mode = "fan_in"
    distribution: Distribution = "truncated_normal"
    formula = (
        "s = scale / max(1, fan); uniform: U(+-sqrt(3s)); truncated_normal: "
        "N(0, s / 0.87962566103423978^2) cut at 2 std; untruncated_normal: N(0, s)"
    )
    origin = "keras"
    keras_classes = ("VarianceScaling",)

    @field_validator("distribution", mode="after")
    @classmethod
    def _keras_normal(cls, value: str) -> str:
        # Keras 3 maps "normal" to "truncated_normal"; the plan shows the resolved name.
        return "truncated_normal" if value == "normal" else value

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        return variance_scaling(self.model_dump(), ctx, self.scale, self.mode, self.distribution)


class _KerasFamily(Initializer):
    """Glorot/He/Lecun: fixed variance scaling, no parameters of their own; the plan
    shows the scale, mode and distribution they stand for."""

    scale: ClassVar[float]
    mode: ClassVar[str]
    distribution: ClassVar[str]
    origin = "keras"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        config = {**self.model_dump(), "scale": self.scale, "mode": self.mode,
                  "distribution": self.distribution}
        return variance_scaling(config, ctx, self.scale, self.mode, self.distribution)


class GlorotUniform(_KerasFamily):
    name: Literal["glorot_uniform"] = "glorot_uniform"
    scale, mode, distribution = 1.0, "fan_avg", "uniform"
    formula = "U(+-sqrt(6 / (fan_in + fan_out)))"
    keras_classes = ("GlorotUniform",)


class GlorotNormal(_KerasFamily):
    name: Literal["glorot_normal"] = "glorot_normal"
    scale, mode, distribution = 1.0, "fan_avg", "truncated_normal"
    formula = "truncated N, std sqrt(2 / (fan_in + fan_out))"
    keras_classes = ("GlorotNormal",)


class HeUniform(_KerasFamily):
    name: Literal["he_uniform"] = "he_uniform"
    scale, mode, distribution = 2.0, "fan_in", "uniform"
    formula = "U(+-sqrt(6 / fan_in))"
    keras_classes = ("HeUniform",)


class HeNormal(_KerasFamily):
    name: Literal["he_normal"] = "he_normal"
    scale, mode, distribution = 2.0, "fan_in", "truncated_normal"
    formula = "truncated N, std sqrt(2 / fan_in)"
    keras_classes = ("HeNormal",)


class LecunUniform(_KerasFamily):
    name: Literal["lecun_uniform"] = "lecun_uniform"
    scale, mode, distribution = 1.0, "fan_in", "uniform"
    formula = "U(+-sqrt(3 / fan_in))"
    keras_classes = ("LecunUniform",)


class LecunNormal(_KerasFamily):
    name: Literal["lecun_normal"] = "lecun_normal"
    scale, mode, distribution = 1.0, "fan_in", "truncated_normal"
    formula = "truncated N, std sqrt(1 / fan_in)"
    keras_classes = ("LecunNormal",)
