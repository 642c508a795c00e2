"""Request models of the initializers: one Pydantic model per name, with its parameters.

A spec names an initializer as a string (``"glorot_uniform"``), an object with ``name``
and parameters, or a Keras config object (``{"class_name": "GlorotUniform", ...}``); all
three validate to the same model. Scale parameters of the plain draws are required
(torch and Keras default them differently); Keras' own ``random_uniform`` /
``random_normal`` keep Keras' defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
Distribution = Literal["uniform", "truncated_normal", "untruncated_normal", "normal"]
LINEAR_NONLINEARITIES = (
    "linear", "sigmoid", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
)
Nonlinearity = Literal[
    "linear", "sigmoid", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d", "tanh", "relu", "leaky_relu", "selu",
]
Gain = Annotated[float, Field(gt=0, description="multiplier of the standard deviation")]


class Zeros(_Params):
    name: Literal["zeros"] = "zeros"


class Ones(_Params):
    name: Literal["ones"] = "ones"


class Constant(_Params):
    name: Literal["constant"] = "constant"
    value: float = 0.0


def _not_below(value: float, info: ValidationInfo, lower_field: str) -> float:
    """Check an upper bound against its already validated lower bound, so the error's
    ``loc`` names the upper bound's field."""
    lower = info.data.get(lower_field)
    if lower is not None and lower > value:
        raise ValueError(f"{lower_field} ({lower}) must not exceed {info.field_name} ({value})")
    return value


class Uniform(_Params):
    name: Literal["uniform"] = "uniform"
    low: float
    high: float

    @field_validator("high", mode="after")
    @classmethod
    def _ordered(cls, high: float, info: ValidationInfo) -> float:
        return _not_below(high, info, "low")


class RandomUniform(_Params):
    name: Literal["random_uniform"] = "random_uniform"
    minval: float = -0.05
    maxval: float = Field(0.05, validate_default=True)

    @field_validator("maxval", mode="after")
    @classmethod
    def _ordered(cls, maxval: float, info: ValidationInfo) -> float:
        return _not_below(maxval, info, "minval")


class Normal(_Params):
    name: Literal["normal"] = "normal"
    mean: float = 0.0
    std: float = Field(ge=0)


class RandomNormal(_Params):
    name: Literal["random_normal"] = "random_normal"
    mean: float = 0.0
    stddev: float = Field(0.05, ge=0)


class TruncatedNormal(_Params):
    name: Literal["truncated_normal"] = "truncated_normal"
    mean: float = 0.0
    std: float = Field(gt=0)
    a: float | None = Field(None, description="absolute lower bound; default mean - 2 std")
    b: float | None = Field(
        None, validate_default=True, description="absolute upper bound; default mean + 2 std"
    )

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


class VarianceScaling(_Params):
    name: Literal["variance_scaling"] = "variance_scaling"
    scale: float = Field(1.0, gt=0)
    mode: Mode = "fan_in"
    distribution: Distribution = "truncated_normal"

    @field_validator("distribution", mode="after")
    @classmethod
    def _keras_normal(cls, value: str) -> str:
        # Keras 3 maps "normal" to "truncated_normal"; the plan shows the resolved name.
        return "truncated_normal" if value == "normal" else value


class _KerasFamily(_Params):
    """Glorot/He/Lecun: fixed variance scaling, no parameters of their own."""


class GlorotUniform(_KerasFamily):
    name: Literal["glorot_uniform"] = "glorot_uniform"


class GlorotNormal(_KerasFamily):
    name: Literal["glorot_normal"] = "glorot_normal"


class HeUniform(_KerasFamily):
    name: Literal["he_uniform"] = "he_uniform"


class HeNormal(_KerasFamily):
    name: Literal["he_normal"] = "he_normal"


class LecunUniform(_KerasFamily):
    name: Literal["lecun_uniform"] = "lecun_uniform"


class LecunNormal(_KerasFamily):
    name: Literal["lecun_normal"] = "lecun_normal"


class XavierUniform(_Params):
    name: Literal["xavier_uniform"] = "xavier_uniform"
    gain: Gain = 1.0


class XavierNormal(_Params):
    name: Literal["xavier_normal"] = "xavier_normal"
    gain: Gain = 1.0


class _Kaiming(_Params):
    """torch's kaiming_uniform_/kaiming_normal_ arguments, shared by both."""

    name: str  # each subclass narrows it to its own literal (first in dumps and schemas)
    a: float = Field(0.0, description="negative slope, used when nonlinearity is leaky_relu")
    mode: Literal["fan_in", "fan_out"] = "fan_in"
    nonlinearity: Nonlinearity = "leaky_relu"


class KaimingUniform(_Kaiming):
    name: Literal["kaiming_uniform"] = "kaiming_uniform"


class KaimingNormal(_Kaiming):
    name: Literal["kaiming_normal"] = "kaiming_normal"


class TorchDefault(_Params):
    name: Literal["torch_default"] = "torch_default"


class Orthogonal(_Params):
    name: Literal["orthogonal"] = "orthogonal"
    gain: Gain = 1.0


class Identity(_Params):
    name: Literal["identity"] = "identity"
    gain: float = 1.0


class Eye(_Params):
    name: Literal["eye"] = "eye"
    gain: float = 1.0


class Dirac(_Params):
    name: Literal["dirac"] = "dirac"
    groups: StrictInt = Field(1, ge=1)


class Sparse(_Params):
    name: Literal["sparse"] = "sparse"
    sparsity: float = Field(ge=0, le=1)
    std: float = Field(0.01, ge=0)


# --------------------------------------------------------- Keras config objects ----

# Keras 3 initializer classes (and their long aliases) to our names.
KERAS_CLASSES: dict[str, str] = {
    "Zeros": "zeros", "Ones": "ones", "Constant": "constant",
    "RandomUniform": "random_uniform", "RandomNormal": "random_normal",
    "TruncatedNormal": "truncated_normal", "VarianceScaling": "variance_scaling",
    "GlorotUniform": "glorot_uniform", "GlorotNormal": "glorot_normal",
    "HeUniform": "he_uniform", "HeNormal": "he_normal",
    "LecunUniform": "lecun_uniform", "LecunNormal": "lecun_normal",
    "Orthogonal": "orthogonal", "OrthogonalInitializer": "orthogonal",
    "Identity": "identity", "IdentityInitializer": "identity",
}
# Keras string aliases that are not names of ours, mapped to what Keras means by them.
_KERAS_ALIASES: dict[str, dict[str, Any]] = {
    "zero": {"name": "zeros"}, "one": {"name": "ones"},
}


def from_keras_config(obj: dict[str, Any]) -> dict[str, Any]:
    """Translate ``{"class_name": ..., "config": {...}}`` to our name and parameters.

    The request seed governs: a ``seed`` inside the Keras config is dropped. (An imported
    ``keras_model`` reports it in the plan's warnings, ``core.keras_inits``; here, inside a
    validator, there is no plan to report it to.)
    """
    class_name = obj.get("class_name")
    if class_name not in KERAS_CLASSES:
        raise ValueError(
            f"unknown Keras initializer class {class_name!r}; known: {sorted(KERAS_CLASSES)}"
        )
    config = dict(obj.get("config") or {})
    config.pop("seed", None)
    # Keras 3 serialises VarianceScaling's axis options (None unless set by EinsumDense);
    # fans here come from the tensor (or a tensor layer's fan_in/fan_out) instead.
    for axes in ("input_axes", "output_axes"):
        if config.get(axes) is not None:
            raise ValueError(
                f"Keras {axes} is not supported; give fan_in/fan_out on a tensor layer"
            )
        config.pop(axes, None)
    name = KERAS_CLASSES[class_name]
    if name == "truncated_normal":  # Keras: stddev, cut at mean +- 2 stddev, default 0.05
        mean = float(config.pop("mean", 0.0))
        std = float(config.pop("stddev", 0.05))
        return {"name": name, "mean": mean, "std": std, **config}
    return {"name": name, **config}


def _normalise(value: Any) -> Any:
    """Accept a bare name, an object with ``name``, or a Keras config object."""
    if isinstance(value, str):
        return _KERAS_ALIASES.get(value, {"name": value})
    if isinstance(value, dict) and "class_name" in value and "name" not in value:
        try:
            return from_keras_config(value)
        except (TypeError, OverflowError) as error:  # e.g. a list as class_name: a 422
            raise ValueError(f"not a Keras initializer config: {error}") from None
    return value


_PARAM_MODELS = (
    Zeros, Ones, Constant, Uniform, Normal, TruncatedNormal, RandomUniform, RandomNormal,
    VarianceScaling, GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform,
    LecunNormal, XavierUniform, XavierNormal, KaimingUniform, KaimingNormal, TorchDefault,
    Orthogonal, Identity, Eye, Dirac, Sparse,
)

InitializerParams = Annotated[
    Zeros | Ones | Constant | Uniform | Normal | TruncatedNormal | RandomUniform
    | RandomNormal | VarianceScaling | GlorotUniform | GlorotNormal | HeUniform | HeNormal
    | LecunUniform | LecunNormal | XavierUniform | XavierNormal | KaimingUniform
    | KaimingNormal | TorchDefault | Orthogonal | Identity | Eye | Dirac | Sparse,
    Field(discriminator="name"),
    BeforeValidator(_normalise),
]
"""An initializer in a spec: a name, ``{"name": ..., params}`` or a Keras config."""

INITIALIZER_NAMES = tuple(model.model_fields["name"].default for model in _PARAM_MODELS)
