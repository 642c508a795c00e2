"""Constants and plain draws whose parameters are the distribution's own: ``zeros``,
``ones``, ``constant``, ``uniform``, ``normal``, ``truncated_normal`` and Keras'
``random_uniform`` / ``random_normal`` (which keep Keras' defaults)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from weightinit.core.initializers.base import (
    InitContext,
    Initializer,
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
    value: float = 0.0
    formula = "value"
    keras_classes = ("Constant",)
    origin = "common"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        return constant_init(self.model_dump(), self.value)


class Uniform(Initializer):
    name: Literal["uniform"] = "uniform"
    low: float
    high: float
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
    mean: float = 0.0
    std: float = Field(ge=0)
    formula = "N(mean, std^2)"
    origin = "common"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        return normal_init(self.model_dump(), self.mean, self.std)


class TruncatedNormal(Initializer):
    name: Literal["truncated_normal"] = "truncated_normal"
    mean: float = 0.0
    std: float = Field(gt=0)
    a: float | None = Field(None, description="absolute lower bound; default mean - 2 std")
    b: float | None = Field(
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
        return truncated_normal_init(config, self.mean, self.std, a, b)


class RandomUniform(Initializer):
    name: Literal["random_uniform"] = "random_uniform"
    minval: float = -0.05
    maxval: float = Field(0.05, validate_default=True)
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
    mean: float = 0.0
    stddev: float = Field(0.05, ge=0)
    formula = "N(mean, stddev^2)"
    keras_classes = ("RandomNormal",)
    keras_ids = ("normal",)  # Keras' "normal" is RandomNormal(0, 0.05)
    origin = "keras"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        return normal_init(self.model_dump(), self.mean, self.stddev)
