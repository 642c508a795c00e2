"""torch.nn.init's fan-based initializers: ``xavier_*``, ``kaiming_*`` and
``torch_default`` (what ``nn.Linear``/``nn.Conv*`` ``reset_parameters`` draw). Normals
here are plain, untruncated, as in torch."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated, Literal

from pydantic import Field
from weightinit.core.initializers.base import (
    InitContext,
    Initializer,
    Real,
    ResolvedInit,
    ResolveError,
    fan,
)
from weightinit.core.initializers.distributions import constant_init, normal_init, uniform_init

LINEAR_NONLINEARITIES = (
    "linear", "sigmoid", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
)
Nonlinearity = Literal[
    "linear", "sigmoid", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d", "tanh", "relu", "leaky_relu", "selu",
]
Gain = Annotated[Real, Field(gt=0, description="multiplier of the standard deviation")]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init.calculate_gain."""
    if nonlinearity in LINEAR_NONLINEARITIES:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ResolveError(f"unsupported nonlinearity {nonlinearity!r}", "nonlinearity")


class XavierUniform(Initializer):
    name: Literal["xavier_uniform"] = "xavier_uniform"
    gain: Gain = 1.0
    formula = "U(+-gain * sqrt(6 / (fan_in + fan_out)))"
    origin = "torch"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        bound = self.gain * math.sqrt(6.0 / (2.0 * fan(ctx, "fan_avg")))
        return uniform_init(self.model_dump(), -bound, bound, bound=bound)


class XavierNormal(Initializer):
    name: Literal["xavier_normal"] = "xavier_normal"
    gain: Gain = 1.0
    formula = "N(0, (gain * sqrt(2 / (fan_in + fan_out)))^2)"
    origin = "torch"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        std = self.gain * math.sqrt(2.0 / (2.0 * fan(ctx, "fan_avg")))
        return normal_init(self.model_dump(), 0.0, std)


class _Kaiming(Initializer):
    """torch's kaiming_uniform_/kaiming_normal_ arguments, shared by both:
    std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""

    name: str  # each subclass narrows it to its own literal (first in dumps and schemas)
    a: Real = Field(0.0, description="negative slope, used when nonlinearity is leaky_relu")
    mode: Literal["fan_in", "fan_out"] = "fan_in"
    nonlinearity: Nonlinearity = "leaky_relu"
    origin = "torch"

    def _gain_std_fan(self, ctx: InitContext) -> tuple[float, float, float]:
        gain = calculate_gain(self.nonlinearity, self.a)
        divisor = fan(ctx, self.mode)
        return gain, gain / math.sqrt(divisor), divisor


class KaimingUniform(_Kaiming):
    name: Literal["kaiming_uniform"] = "kaiming_uniform"
    formula = "U(+-sqrt(3) * gain / sqrt(fan)), gain = calculate_gain(nonlinearity, a)"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        gain, std, divisor = self._gain_std_fan(ctx)
        bound = math.sqrt(3.0) * std
        return uniform_init(self.model_dump(), -bound, bound, bound=bound, gain=gain,
                            fan=divisor)


class KaimingNormal(_Kaiming):
    name: Literal["kaiming_normal"] = "kaiming_normal"
    formula = "N(0, (gain / sqrt(fan))^2), gain = calculate_gain(nonlinearity, a)"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        gain, std, divisor = self._gain_std_fan(ctx)
        return normal_init(self.model_dump(), 0.0, std, gain=gain, fan=divisor)


class TorchDefault(Initializer):
    """torch Linear/Conv reset_parameters: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in));
    biases use the weight's fan_in (the plan gives biases their weight's fans)."""

    name: Literal["torch_default"] = "torch_default"
    formula = "U(+-1 / sqrt(fan_in)) (Linear/Conv reset_parameters)"
    origin = "torch"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        if ctx.fans.fan_in == 0:  # nn.Linear(0, n)'s bias: torch's bound 0, so zeros
            zero = constant_init(self.model_dump(), 0.0)
            return replace(zero, derived={"bound": 0.0, "fan": 0.0})
        fan_in = fan(ctx, "fan_in")
        bound = 1.0 / math.sqrt(fan_in)
        return uniform_init(self.model_dump(), -bound, bound, bound=bound, fan=fan_in)
