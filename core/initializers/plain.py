"""Constants and plain draws whose parameters are the distribution's own: ``zeros``,
``ones``, ``constant``, ``uniform``, ``normal``, ``truncated_normal`` and Keras'
``random_uniform`` / ``random_normal`` (which keep Keras' defaults)."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from weightinit.core.initializers.base import (
    InitContext,
    Initializer,
    Real,
    ResolvedInit,
    not_below,
)
from weightinit.core.initializers.distributions import (
    constant_init,
    normal_init,
    truncated_normal_init,
    uniform_init,
)


class Zeros(Initializer):
    name: Literal["zeros"] = "zeros"
    formula = "0"
    keras_classes = ("Zeros",)
    keras_ids = ("zero",)
    origin = "common"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        return constant_init(self.model_dump(), 0.0)


class Ones(Initializer):
    name: Literal["ones"] = "ones"
    formula = "1"
    keras_classes = ("Ones",)
    keras_ids = ("one",)
    origin = "common"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        return constant_init(self.model_dump(), 1.0)


class Constant(Initializer):
    name: Literal["constant"] = "constant"
    value: Real = 0.0
    formula = "value"
    keras_classes = ("Constant",)
    origin = "common"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        return constant_init(self.model_dump(), self.value)


class Uniform(Initializer):
    name: Literal["uniform"] = "uniform"
    low: Real
    high: Real
    formula = "U[low, high)"
    origin = "common"

    @field_validator("high", mode="after")
    @classmethod
    def _ordered(cls, high: float, info: ValidationInfo) -> float:
        return not_below(high, info, "low")

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        return uniform_init(self.model_dump(), self.low, self.high)


class Normal(Initializer):
    name: Literal["normal"] = "normal"
    mean: Real = 0.0
    std: Real = Field(ge=0)
    formula = "N(mean, std^2)"
    origin = "common"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        return normal_init(self.model_dump(), self.mean, self.std)


class TruncatedNormal(Initializer):
    name: Literal["truncated_normal"] = "truncated_normal"
    mean: Real = 0.0
    std: Real = Field(gt=0)
    a: Real | None = Field(None, description="absolute lower bound; default mean - 2 std")
    b: Real | None = Field(
        None, validate_default=True, description="absolute upper bound; default mean + 2 std"
    )
    formula = "N(mean, std^2) restricted to [a, b] (absolute; default mean +- 2 std)"
    keras_classes = ("TruncatedNormal",)
    origin = "common"

    @field_validator("b", mode="after")
    @classmethod
    def _ordered(cls, b: float | None, info: ValidationInfo) -> float | None:
        # Checked on ``b`` (validated last, default included) so ``loc`` names a bound.
        mean, std = info.data.get("mean"), info.data.get("std")
        if mean is None or std is None or "a" not in info.data:
            return b  # an earlier field failed and is reported on its own
        low = mean - 2 * std if info.data["a"] is None else info.data["a"]
        high = mean + 2 * std if b is None else b
        if not low < high:
            raise ValueError(f"a ({low}) must be less than b ({high})")
        return b

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        a = self.mean - 2.0 * self.std if self.a is None else self.a
        b = self.mean + 2.0 * self.std if self.b is None else self.b
        config = {**self.model_dump(), "a": a, "b": b}
        resolved = truncated_normal_init(config, self.mean, self.std, a, b)
        if ctx.convention.absolute_truncation and (self.a is None or self.b is None):
            # The ViT/timm trap: torch's trunc_normal_(std=0.02) cuts at +-2 absolute.
            note = (f"truncated_normal without a and b cuts at mean +- 2 std "
                    f"([{a:.6g}, {b:.6g}]), Keras' rule; torch's trunc_normal_ cuts at a=-2, "
                    "b=2 absolute: name trunc_normal for torch's meaning")
            return replace(resolved, warnings=(note,))
        return resolved


class TruncNormal(Initializer):
    """torch.nn.init.trunc_normal_: its parameters and its defaults (bounds absolute)."""

    name: Literal["trunc_normal"] = "trunc_normal"
    mean: Real = 0.0
    std: Real = Field(1.0, gt=0)
    a: Real = Field(-2.0, description="absolute lower bound (not in units of std)")
    b: Real = Field(2.0, description="absolute upper bound (not in units of std)")
    formula = ("torch's trunc_normal_: N(mean, std^2) restricted to the absolute [a, b] "
               "(defaults mean 0, std 1, a -2, b 2)")
    origin = "torch"

    @field_validator("b", mode="after")
    @classmethod
    def _ordered(cls, b: float, info: ValidationInfo) -> float:
        a = info.data.get("a")
        if a is not None and not a < b:
            raise ValueError(f"a ({a}) must be less than b ({b})")
        return b

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        resolved = truncated_normal_init(self.model_dump(), self.mean, self.std, self.a, self.b)
        if self.mean < self.a - 2.0 * self.std or self.mean > self.b + 2.0 * self.std:
            note = ("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                    "The distribution of values may be incorrect. (torch's warning)")
            return replace(resolved, warnings=(note,))
        return resolved


class RandomUniform(Initializer):
    name: Literal["random_uniform"] = "random_uniform"
    minval: Real = -0.05
    maxval: Real = Field(0.05, validate_default=True)
    formula = "U[minval, maxval)"
    keras_classes = ("RandomUniform",)
    keras_ids = ("uniform",)  # Keras' "uniform" is RandomUniform(-0.05, 0.05)
    origin = "keras"

    @field_validator("maxval", mode="after")
    @classmethod
    def _ordered(cls, maxval: float, info: ValidationInfo) -> float:
        return not_below(maxval, info, "minval")

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        return uniform_init(self.model_dump(), self.minval, self.maxval)


class RandomNormal(Initializer):
    name: Literal["random_normal"] = "random_normal"
    mean: Real = 0.0
    stddev: Real = Field(0.05, ge=0)
    formula = "N(mean, stddev^2)"
    keras_classes = ("RandomNormal",)
    keras_ids = ("normal",)  # Keras' "normal" is RandomNormal(0, 0.05)
    origin = "keras"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        return normal_init(self.model_dump(), self.mean, self.stddev)
