"""The registry of initializers: name -> parameters, sampler, expected statistics.

One core, many names (as in ``jax.nn.initializers``): ``variance_scaling`` does the work
for the Keras family (glorot/he/lecun), ``_kaiming``/``_xavier`` for torch's. Each name
means what it means in the framework it comes from (formulas: ``catalogue()``):
Keras' ``he_normal`` is a normal truncated at 2 std with the 0.87962566103423978
correction, torch's ``kaiming_normal`` a plain normal. ``resolve`` turns a validated
parameter object plus the tensor's fans into a ``ResolvedInit`` whose ``config`` lists
every parameter and the numbers derived from the fans, as the plan shows them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from weightinit.core import initializer_params as P
from weightinit.core.fans import Convention, Fans
from weightinit.core.portable_math import exp, phi
from weightinit.core.samplers import (
    ConstantSampler,
    DiracSampler,
    EyeSampler,
    OrthogonalSampler,
    RandomSampler,
    Sampler,
    SparseSampler,
)
from weightinit.core.transforms import P_MAX, P_MIN, Transform

TRUNCATION_CORRECTION = 0.87962566103423978  # std of N(0,1) truncated to [-2, 2]
_SQRT_2PI = math.sqrt(2.0 * math.pi)


class ResolveError(ValueError):
    """An initializer cannot be applied to this tensor; ``field`` names the culprit."""

    def __init__(self, msg: str, field: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.field = field


@dataclass(frozen=True)
class InitContext:
    """What an initializer may look at: the tensor's shape, fans and convention."""

    shape: tuple[int, ...]
    fans: Fans
    convention: Convention


@dataclass(frozen=True)
class ResolvedInit:
    """An initializer bound to one tensor: every parameter, the sampler, expectations."""

    config: dict[str, Any]
    sampler: Sampler
    expected_mean: float
    expected_variance: float
    derived: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class InitializerDef:
    """A registry entry: parameter model, resolver, formula and where the name comes from."""

    name: str
    params: type[BaseModel]
    resolve: Callable[[Any, InitContext], ResolvedInit]
    formula: str
    origin: Literal["torch", "keras", "common"]


# ---------------------------------------------------------------- distributions ----


def uniform_init(config: dict[str, Any], low: float, high: float, **derived: float) -> ResolvedInit:
    """U[low, high): mean (low+high)/2, variance (high-low)^2/12."""
    return ResolvedInit(
        config,
        RandomSampler(Transform.uniform(low, high)),
        (low + high) / 2.0,
        (high - low) ** 2 / 12.0,
        {"low": low, "high": high, **derived},
    )


def normal_init(config: dict[str, Any], mean: float, std: float, **derived: float) -> ResolvedInit:
    """N(mean, std^2), untruncated."""
    return ResolvedInit(
        config,
        RandomSampler(Transform.normal(mean, std)),
        mean,
        std * std,
        {"std": std, **derived},
    )


def _pdf(z: float) -> float:
    return exp(-0.5 * z * z) / _SQRT_2PI


def truncated_normal_init(
    config: dict[str, Any], mean: float, std: float, a: float, b: float, **derived: float
) -> ResolvedInit:
    """N(mean, std^2) restricted to [a, b]; exact truncated mean and variance."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    # Phi near 1 has lost its low digits: above the mean, use the mirrored lower tail.
    mass = phi(-alpha) - phi(-beta) if alpha > 0.0 else phi(beta) - phi(alpha)
    # The probability interval the v1 transform maps uniforms into (it clamps p).
    drawn_mass = min(phi(beta), P_MAX) - max(phi(alpha), P_MIN)
    if not mass > 0.0 or abs(drawn_mass - mass) > 1e-6 * mass:
        # Far in a tail the probabilities [Phi(a), Phi(b)] hold few doubles (none at all
        # past ~8.3 std above the mean or ~37.5 below): draws would not follow the law.
        raise ResolveError(
            f"[a, b] = [{a}, {b}] lies too far in the tail of N({mean}, {std}^2) for "
            "algorithm v1 to sample it faithfully",
            "b",
        )
    pdf_a = _pdf(alpha) if math.isfinite(alpha) else 0.0
    pdf_b = _pdf(beta) if math.isfinite(beta) else 0.0
    shift = (pdf_a - pdf_b) / mass
    a_term = alpha * pdf_a if math.isfinite(alpha) else 0.0
    b_term = beta * pdf_b if math.isfinite(beta) else 0.0
    variance = std * std * (1.0 + (a_term - b_term) / mass - shift * shift)
    return ResolvedInit(
        config,
        RandomSampler(Transform.truncated_normal(mean, std, a, b)),
        mean + std * shift,
        variance,
        {"std": std, "a": a, "b": b, **derived},
    )


def constant_init(config: dict[str, Any], value: float) -> ResolvedInit:
    """Every element ``value``: mean ``value``, variance 0."""
    return ResolvedInit(config, ConstantSampler(value), value, 0.0)


# ------------------------------------------------------------------- fan helpers ----


def _fan(ctx: InitContext, mode: str) -> float:
    """The fan a variance-scaling mode divides by; rejects tensors without the fans it reads
    (fan_in and fan_out modes read one, so a vector with just that fan given will do)."""
    fan_in, fan_out = ctx.fans.fan_in, ctx.fans.fan_out
    reads = {"fan_in": (fan_in,), "fan_out": (fan_out,)}.get(mode, (fan_in, fan_out))
    if None in reads:
        wanted, give = ("fans", "fan_in/fan_out") if len(reads) == 2 else (mode, mode)
        raise ResolveError(
            f"mode {mode!r} needs {wanted}, and a tensor of shape {list(ctx.shape)} has none "
            f"under the torch convention (it needs at least 2 dimensions); give {give}",
        )
    if any(fan <= 0 for fan in reads):
        raise ResolveError(f"fans must be positive, got fan_in={fan_in}, fan_out={fan_out}")
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    return math.sqrt(fan_in * fan_out)  # fan_geo_avg


# ---------------------------------------------------------- keras variance family ----


def variance_scaling(
    config: dict[str, Any], ctx: InitContext, scale: float, mode: str, distribution: str
) -> ResolvedInit:
    """Keras 3 VarianceScaling: s = scale / max(1, fan); uniform limit sqrt(3s);
    truncated std sqrt(s)/0.8796... cut at 2 std; untruncated std sqrt(s)."""
    fan = max(1.0, _fan(ctx, mode))
    variance = scale / fan
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        return uniform_init(config, -limit, limit, limit=limit, fan=fan)
    if distribution == "untruncated_normal":
        return normal_init(config, 0.0, math.sqrt(variance), fan=fan)
    std = math.sqrt(variance) / TRUNCATION_CORRECTION
    return truncated_normal_init(config, 0.0, std, -2.0 * std, 2.0 * std, fan=fan)


def _variance_scaling_def(params: P.VarianceScaling, ctx: InitContext) -> ResolvedInit:
    return variance_scaling(
        params.model_dump(), ctx, params.scale, params.mode, params.distribution
    )


def _keras_family(
    scale: float, mode: str, distribution: str
) -> Callable[[BaseModel, InitContext], ResolvedInit]:
    """A Keras VarianceScaling specialization (glorot/he/lecun); the plan shows its numbers."""

    def resolve(params: BaseModel, ctx: InitContext) -> ResolvedInit:
        config = {**params.model_dump(), "scale": scale, "mode": mode, "distribution": distribution}
        return variance_scaling(config, ctx, scale, mode, distribution)

    return resolve


# ---------------------------------------------------------------- torch family ----


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init.calculate_gain."""
    if nonlinearity in P.LINEAR_NONLINEARITIES:
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


def _kaiming(params: P.KaimingUniform | P.KaimingNormal, ctx: InitContext) -> ResolvedInit:
    """std = gain / sqrt(fan); uniform bound sqrt(3) * std (torch semantics, untruncated)."""
    gain = calculate_gain(params.nonlinearity, params.a)
    fan = _fan(ctx, params.mode)
    std = gain / math.sqrt(fan)
    config = params.model_dump()
    if params.name == "kaiming_uniform":
        bound = math.sqrt(3.0) * std
        return uniform_init(config, -bound, bound, bound=bound, gain=gain, fan=fan)
    return normal_init(config, 0.0, std, gain=gain, fan=fan)


def _xavier(params: P.XavierUniform | P.XavierNormal, ctx: InitContext) -> ResolvedInit:
    """std = gain * sqrt(2 / (fan_in + fan_out)); uniform bound sqrt(3) * std."""
    fan_sum = 2.0 * _fan(ctx, "fan_avg")
    config = params.model_dump()
    if params.name == "xavier_uniform":
        bound = params.gain * math.sqrt(6.0 / fan_sum)
        return uniform_init(config, -bound, bound, bound=bound)
    return normal_init(config, 0.0, params.gain * math.sqrt(2.0 / fan_sum))


def _torch_default(params: P.TorchDefault, ctx: InitContext) -> ResolvedInit:
    """torch Linear/Conv reset_parameters: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in));
    biases use the weight's fan_in (the plan gives biases their weight's fans)."""
    fan_in = _fan(ctx, "fan_in")
    bound = 1.0 / math.sqrt(fan_in)
    return uniform_init(params.model_dump(), -bound, bound, bound=bound, fan=fan_in)


# ---------------------------------------------------------------- plain draws ----


def _uniform(params: P.Uniform, ctx: InitContext) -> ResolvedInit:
    return uniform_init(params.model_dump(), params.low, params.high)


def _random_uniform(params: P.RandomUniform, ctx: InitContext) -> ResolvedInit:
    return uniform_init(params.model_dump(), params.minval, params.maxval)


def _normal(params: P.Normal, ctx: InitContext) -> ResolvedInit:
    return normal_init(params.model_dump(), params.mean, params.std)


def _random_normal(params: P.RandomNormal, ctx: InitContext) -> ResolvedInit:
    return normal_init(params.model_dump(), params.mean, params.stddev)


def _truncated_normal(params: P.TruncatedNormal, ctx: InitContext) -> ResolvedInit:
    a = params.mean - 2.0 * params.std if params.a is None else params.a
    b = params.mean + 2.0 * params.std if params.b is None else params.b
    config = {**params.model_dump(), "a": a, "b": b}
    return truncated_normal_init(config, params.mean, params.std, a, b)


def _constant(params: BaseModel, ctx: InitContext) -> ResolvedInit:
    value = {"zeros": 0.0, "ones": 1.0}.get(params.name, getattr(params, "value", 0.0))
    return constant_init(params.model_dump(), value)


# ------------------------------------------------------------ structured fills ----


def _orthogonal(params: P.Orthogonal, ctx: InitContext) -> ResolvedInit:
    """Rows (or columns) orthonormal, times gain: mean 0, variance gain^2 / max(rows, cols)."""
    if len(ctx.shape) < 2:
        raise ResolveError("orthogonal needs a tensor of at least 2 dimensions")
    flatten = "trailing" if ctx.convention == "torch" else "leading"
    sampler = OrthogonalSampler(params.gain, flatten)
    rows, cols = sampler.matrix_shape(ctx.shape)
    config = {**params.model_dump(), "flatten": flatten}
    return ResolvedInit(config, sampler, 0.0, params.gain**2 / max(rows, cols))


def _eye(params: P.Identity, ctx: InitContext) -> ResolvedInit:
    if len(ctx.shape) != 2:
        raise ResolveError(f"{params.name} needs a 2-D tensor, got shape {list(ctx.shape)}")
    rows, cols = ctx.shape
    mean = params.gain * min(rows, cols) / (rows * cols)
    variance = params.gain**2 * min(rows, cols) / (rows * cols) - mean * mean
    return ResolvedInit(params.model_dump(), EyeSampler(params.gain), mean, variance)


def _dirac(params: P.Dirac, ctx: InitContext) -> ResolvedInit:
    if not 3 <= len(ctx.shape) <= 5:
        raise ResolveError(f"dirac needs a 3-, 4- or 5-D kernel, got shape {list(ctx.shape)}")
    out_channels = ctx.shape[0] if ctx.convention == "torch" else ctx.shape[-1]
    in_channels = ctx.shape[1] if ctx.convention == "torch" else ctx.shape[-2]
    if out_channels % params.groups:
        raise ResolveError(f"out channels {out_channels} not divisible by groups", "groups")
    ones = params.groups * min(out_channels // params.groups, in_channels)
    numel = math.prod(ctx.shape)
    mean = ones / numel
    sampler = DiracSampler(params.groups, ctx.convention)
    return ResolvedInit(params.model_dump(), sampler, mean, mean - mean * mean)


def _sparse(params: P.Sparse, ctx: InitContext) -> ResolvedInit:
    if len(ctx.shape) != 2:
        raise ResolveError(f"sparse needs a 2-D tensor, got shape {list(ctx.shape)}")
    rows = ctx.shape[0]
    kept = (rows - math.ceil(params.sparsity * rows)) / rows
    sampler = SparseSampler(params.sparsity, params.std)
    return ResolvedInit(params.model_dump(), sampler, 0.0, params.std**2 * kept)


# --------------------------------------------------------------------- registry ----


def _entries() -> list[InitializerDef]:
    keras = "keras"
    return [
        InitializerDef("zeros", P.Zeros, _constant, "0", "common"),
        InitializerDef("ones", P.Ones, _constant, "1", "common"),
        InitializerDef("constant", P.Constant, _constant, "value", "common"),
        InitializerDef("uniform", P.Uniform, _uniform, "U[low, high)", "common"),
        InitializerDef("normal", P.Normal, _normal, "N(mean, std^2)", "common"),
        InitializerDef(
            "truncated_normal", P.TruncatedNormal, _truncated_normal,
            "N(mean, std^2) restricted to [a, b] (absolute; default mean +- 2 std)", "common",
        ),
        InitializerDef(
            "random_uniform", P.RandomUniform, _random_uniform, "U[minval, maxval)", keras
        ),
        InitializerDef("random_normal", P.RandomNormal, _random_normal, "N(mean, stddev^2)", keras),
        InitializerDef(
            "variance_scaling", P.VarianceScaling, _variance_scaling_def,
            "s = scale / max(1, fan); uniform: U(+-sqrt(3s)); truncated_normal: "
            "N(0, s / 0.87962566103423978^2) cut at 2 std; untruncated_normal: N(0, s)", keras,
        ),
        InitializerDef("glorot_uniform", P.GlorotUniform, _keras_family(1.0, "fan_avg", "uniform"),
                       "U(+-sqrt(6 / (fan_in + fan_out)))", keras),
        InitializerDef("glorot_normal", P.GlorotNormal,
                       _keras_family(1.0, "fan_avg", "truncated_normal"),
                       "truncated N, std sqrt(2 / (fan_in + fan_out))", keras),
        InitializerDef("he_uniform", P.HeUniform, _keras_family(2.0, "fan_in", "uniform"),
                       "U(+-sqrt(6 / fan_in))", keras),
        InitializerDef("he_normal", P.HeNormal, _keras_family(2.0, "fan_in", "truncated_normal"),
                       "truncated N, std sqrt(2 / fan_in)", keras),
        InitializerDef("lecun_uniform", P.LecunUniform, _keras_family(1.0, "fan_in", "uniform"),
                       "U(+-sqrt(3 / fan_in))", keras),
        InitializerDef("lecun_normal", P.LecunNormal,
                       _keras_family(1.0, "fan_in", "truncated_normal"),
                       "truncated N, std sqrt(1 / fan_in)", keras),
        InitializerDef("xavier_uniform", P.XavierUniform, _xavier,
                       "U(+-gain * sqrt(6 / (fan_in + fan_out)))", "torch"),
        InitializerDef("xavier_normal", P.XavierNormal, _xavier,
                       "N(0, (gain * sqrt(2 / (fan_in + fan_out)))^2)", "torch"),
        InitializerDef("kaiming_uniform", P.KaimingUniform, _kaiming,
                       "U(+-sqrt(3) * gain / sqrt(fan)), gain = calculate_gain(nonlinearity, a)",
                       "torch"),
        InitializerDef("kaiming_normal", P.KaimingNormal, _kaiming,
                       "N(0, (gain / sqrt(fan))^2), gain = calculate_gain(nonlinearity, a)",
                       "torch"),
        InitializerDef("torch_default", P.TorchDefault, _torch_default,
                       "U(+-1 / sqrt(fan_in)) (Linear/Conv reset_parameters)", "torch"),
        InitializerDef("orthogonal", P.Orthogonal, _orthogonal,
                       "gain * Q of QR(N(0,1) matrix), sign-corrected", "common"),
        InitializerDef("identity", P.Identity, _eye, "gain * eye(rows, cols)", keras),
        InitializerDef("eye", P.Eye, _eye, "gain * eye(rows, cols)", "torch"),
        InitializerDef("dirac", P.Dirac, _dirac, "1 at each kernel centre of w[d, d]", "torch"),
        InitializerDef("sparse", P.Sparse, _sparse,
                       "N(0, std^2), ceil(sparsity * rows) rows zeroed per column", "torch"),
    ]


REGISTRY: dict[str, InitializerDef] = {entry.name: entry for entry in _entries()}


def resolve(params: BaseModel, ctx: InitContext) -> ResolvedInit:
    """Bind validated initializer parameters to a tensor (raises ``ResolveError``)."""
    try:
        resolved = REGISTRY[params.name].resolve(params, ctx)
    except ResolveError:
        raise
    except (ValueError, OverflowError, ZeroDivisionError) as error:
        # Finite parameters whose derived numbers overflow (e.g. high - low): bad input.
        raise ResolveError(f"{params.name}: {error}") from None
    if not (math.isfinite(resolved.expected_mean) and math.isfinite(resolved.expected_variance)):
        raise ResolveError(f"{params.name}: parameters too large, the variance overflows")
    return resolved


def catalogue() -> list[dict[str, Any]]:
    """The registry as ``GET /v1/initializers`` lists it: parameters, defaults, formula."""
    entries = []
    for entry in REGISTRY.values():
        schema = entry.params.model_json_schema()
        properties = {k: v for k, v in schema.get("properties", {}).items() if k != "name"}
        entries.append(
            {
                "name": entry.name,
                "origin": entry.origin,
                "formula": entry.formula,
                "parameters": properties,
                "required": [r for r in schema.get("required", []) if r != "name"],
            }
        )
    return entries
