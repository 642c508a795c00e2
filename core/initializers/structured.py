"""Initializers that fill a tensor as a whole rather than element by element:
``orthogonal``, ``identity`` (Keras) / ``eye`` (torch), ``dirac`` and ``sparse``."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, StrictInt
from weightinit.core.initializers.base import (
    InitContext,
    Initializer,
    Real,
    ResolvedInit,
    ResolveError,
)
from weightinit.core.initializers.torch_family import Gain
from weightinit.core.samplers import DiracSampler, EyeSampler, OrthogonalSampler, SparseSampler


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
        flatten = "trailing" if ctx.convention == "torch" else "leading"
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
        out_channels = ctx.shape[0] if ctx.convention == "torch" else ctx.shape[-1]
        in_channels = ctx.shape[1] if ctx.convention == "torch" else ctx.shape[-2]
        if out_channels % self.groups:
            raise ResolveError(f"out channels {out_channels} not divisible by groups", "groups")
        ones = self.groups * min(out_channels // self.groups, in_channels)
        mean = ones / math.prod(ctx.shape)
        sampler = DiracSampler(self.groups, ctx.convention)
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
