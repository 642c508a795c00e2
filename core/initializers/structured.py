"""Initializers that fill a tensor as a whole rather than element by element:
``orthogonal``, ``identity`` (Keras) / ``eye`` (torch), ``dirac``, ``sparse`` and the
fixed ``sinusoidal`` position table."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field, StrictInt
from weightinit.core.initializers.base import (
    InitContext,
    Initializer,
    Real,
    ResolvedInit,
    ResolveError,
)
from weightinit.core.initializers.torch_family import Gain
from weightinit.core.rng.portable_math import SINCOS_MAX_ARG, sincos_array
from weightinit.core.rng.samplers import (
    DiracSampler,
    EyeSampler,
    OrthogonalSampler,
    SinusoidalSampler,
    SparseSampler,
    inverse_timescales,
)


class Orthogonal(Initializer):
    """Rows (or columns) orthonormal, times gain: mean 0, variance gain^2 / max(rows, cols)."""

    name: Literal["orthogonal"] = "orthogonal"
    gain: Gain = 1.0
    formula = "gain * Q of QR(N(0,1) matrix), sign-corrected"
    keras_classes = ("Orthogonal", "OrthogonalInitializer")
    origin = "common"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        if len(ctx.shape) < 2:
            raise ResolveError("orthogonal needs a tensor of at least 2 dimensions")
        flatten = ctx.convention.layout.matrix_flatten
        sampler = OrthogonalSampler(self.gain, flatten)
        rows, cols = sampler.matrix_shape(ctx.shape)
        config = {**self.model_dump(), "flatten": flatten}
        return ResolvedInit(config, sampler, 0.0, self.gain**2 / max(rows, cols))


class _Eye(Initializer):
    gain: Real = 1.0
    formula = "gain * eye(rows, cols)"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        if len(ctx.shape) != 2:
            raise ResolveError(f"{self.name} needs a 2-D tensor, got shape {list(ctx.shape)}")
        rows, cols = ctx.shape
        mean = self.gain * min(rows, cols) / (rows * cols)
        variance = self.gain**2 * min(rows, cols) / (rows * cols) - mean * mean
        return ResolvedInit(self.model_dump(), EyeSampler(self.gain), mean, variance)


class Identity(_Eye):
    name: Literal["identity"] = "identity"
    origin = "keras"
    keras_classes = ("Identity", "IdentityInitializer")


class Eye(_Eye):
    name: Literal["eye"] = "eye"
    origin = "torch"


class Dirac(Initializer):
    name: Literal["dirac"] = "dirac"
    groups: StrictInt = Field(1, ge=1)
    formula = "1 at each kernel centre of w[d, d]"
    origin = "torch"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        if not 3 <= len(ctx.shape) <= 5:
            raise ResolveError(f"dirac needs a 3-, 4- or 5-D kernel, got shape {list(ctx.shape)}")
        out_channels, in_channels, _ = ctx.convention.layout.conv_axes(ctx.shape)
        if out_channels % self.groups:
            raise ResolveError(f"out channels {out_channels} not divisible by groups", "groups")
        ones = self.groups * min(out_channels // self.groups, in_channels)
        mean = ones / math.prod(ctx.shape)
        sampler = DiracSampler(self.groups, ctx.convention.layout)
        return ResolvedInit(self.model_dump(), sampler, mean, mean - mean * mean)


class Sparse(Initializer):
    name: Literal["sparse"] = "sparse"
    sparsity: Real = Field(ge=0, le=1)
    std: Real = Field(0.01, ge=0)
    formula = "N(0, std^2), ceil(sparsity * rows) rows zeroed per column"
    origin = "torch"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        if len(ctx.shape) != 2:
            raise ResolveError(f"sparse needs a 2-D tensor, got shape {list(ctx.shape)}")
        rows = ctx.shape[0]
        kept = (rows - math.ceil(self.sparsity * rows)) / rows
        sampler = SparseSampler(self.sparsity, self.std)
        return ResolvedInit(self.model_dump(), sampler, 0.0, self.std**2 * kept)


class Sinusoidal(Initializer):
    """The fixed sinusoidal position table (Whisper's encoder positions): deterministic."""

    name: Literal["sinusoidal"] = "sinusoidal"
    max_timescale: Real = Field(10000.0, ge=1, le=1e12,
                                 description="the longest wavelength's period, over 2 pi")
    formula = ("w[t, j] = sin(t * f_j) for j < C/2, cos(t * f_(j - C/2)) after, "
               "f_k = max_timescale^(-k / (C/2 - 1)) (fixed position table)")
    origin = "common"

    def resolve(self, ctx: InitContext) -> ResolvedInit:
        """Each (sin, cos) pair squares to 1, so E[x^2] = 1/2; the mean sums each column
        in closed form, ``sum_t sin(t w) = sin(L w / 2) sin((L - 1) w / 2) / sin(w / 2)``
        (and cos alike), with the portable sin/cos: the plan's numbers are bitwise too."""
        if len(ctx.shape) != 2:
            raise ResolveError(f"sinusoidal needs a 2-D tensor, got shape {list(ctx.shape)}")
        rows, cols = ctx.shape
        if cols % 2 or cols < 4:
            raise ResolveError(
                f"sinusoidal needs an even number of columns, at least 4; got {cols}")
        if rows > SINCOS_MAX_ARG:
            raise ResolveError(f"sinusoidal tables have at most {int(SINCOS_MAX_ARG)} rows")
        inverse = inverse_timescales(cols, self.max_timescale)
        half_turn, _ = sincos_array(rows * inverse / 2.0)
        step, _ = sincos_array(inverse / 2.0)
        sin_last, cos_last = sincos_array((rows - 1) * inverse / 2.0)
        mean = float(np.sum(half_turn * (sin_last + cos_last) / step)) / (rows * cols)
        return ResolvedInit(self.model_dump(), SinusoidalSampler(self.max_timescale), mean,
                            max(0.0, 0.5 - mean * mean))
