"""The weights of one Keras layer, as Keras 3 builds them, as ``TensorPlan``s.

Each builder reads a layer's config (units, filters, flags, initializer configs) and its
build-time input shape, and plans its weights under their Keras names (``kernel``,
``lstm_cell/recurrent_kernel``, ``query/kernel``), layouts and fans, through the same
``Expansion.tensor`` every spec layer uses. Where a weight has a spec-layer equivalent its
``layer_type`` and ``role`` are the spec's (``linear``/``weight``, ``lstm``/``recurrent``),
so reports and diagnostics read the same. Defaults are the Keras layer's own; a config key
present as ``null`` means Keras ``add_weight``'s fallback, ``glorot_uniform``.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from weightinit.core.conventions import KERAS
from weightinit.core.conventions.base import ONES as ONES_INIT
from weightinit.core.conventions.base import ZEROS as ZEROS_INIT
from weightinit.core.conventions.keras_convention import GLOROT_UNIFORM
from weightinit.core.errors import Loc, SpecError
from weightinit.core.fans import Fans
from weightinit.core.keras.initializers import KerasInit, axes_fans, keras_initializer
from weightinit.core.keras.shapes import Shape, analyze_einsum, channels_axis
from weightinit.core.layers.base import Expansion, LayerBase, Override, TensorPlan
from weightinit.core.layers.tensors import with_override_stats

GLOROT = KerasInit(GLOROT_UNIFORM)
ZEROS = KerasInit(ZEROS_INIT)
ONES = KerasInit(ONES_INIT)
NAMES = KERAS.norm  # gamma, beta, moving statistics
# The config key of each spec-layer initializer field, for weights laid out by KERAS.
CONFIG_KEYS = {"weight_init": "kernel_initializer", "recurrent_init": "recurrent_initializer",
               "bias_init": "bias_initializer"}


class _Owner(LayerBase):
    """What ``Expansion.tensor`` reads from a layer: its name (validated) and type."""

    type: str


@dataclass
class KerasLayer:
    """One layer to plan: its config, where it sits and the shapes it is built with."""

    class_name: str
    config: dict[str, Any]
    loc: Loc
    prefix: str = ""
    shapes: dict[str, Shape | None] = field(default_factory=dict)
    dtype: str = "float32"
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.config.get("name"))

    def error(self, msg: str, *key: str | int) -> SpecError:
        return SpecError(
            (*self.loc, "config", *key) if key else self.loc,
            f"layer {self.name!r} ({self.class_name}): {msg}",
        )

    def size(self, key: str, default: int | None = None) -> int:
        value = self.config.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.error(f"{key} must be a positive integer, got {value!r}", key)
        return value

    def sizes(self, key: str, rank: int) -> tuple[int, ...]:
        """A size per spatial dimension (an int stands for all of them), as Keras takes."""
        value = self.config.get(key)
        values = [value] * rank if isinstance(value, int) else value
        if not (isinstance(values, list) and len(values) == rank and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)):
            raise self.error(f"{key} must be {rank} positive integers, got {value!r}", key)
        return tuple(values)

    def flag(self, key: str, default: bool) -> bool:
        value = self.config.get(key, default)
        return default if value is None else bool(value)

    def shape(self, name: str = "input_shape") -> Shape:
        shape = self.shapes.get(name)
        if shape is None:
            raise self.error(
                f"cannot infer its input shape ({name}): give the model a keras.Input or "
                "save it built (with build_config)"
            )
        return shape

    def dim(self, axis: int, name: str = "input_shape") -> int:
        shape = self.shape(name)
        try:
            size = shape[axis]
        except IndexError:
            raise self.error(f"input shape {list(shape)} has no axis {axis}") from None
        if size is None:
            raise self.error(f"axis {axis} of its input shape {list(shape)} is unknown")
        return size

    def initializer(self, key: str, default: KerasInit) -> KerasInit:
        if key not in self.config:
            return default
        if self.config[key] is None:
            return GLOROT
        return keras_initializer(
            self.config[key], (*self.loc, "config", key), f"{self.name} {key}", self.warnings
        )

    def tensor(
        self, local: str, shape: Sequence[int], key: str, default: KerasInit, role: str,
        layer_type: str, *, fans: Fans | None = None, overrides: Sequence[Override] = (),
    ) -> TensorPlan:
        """Plan weight ``<prefix><layer>/<local>``, initialized by config ``key``."""
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
            raise self.error(f"weight {local!r} would have shape {list(shape)}")
        shape = tuple(shape)
        init = self.initializer(key, default)
        try:
            fans = init.explicit_fans(shape) or fans
        except ValueError as error:
            raise self.error(str(error), key) from None
        try:
            owner = _Owner(name=self.name, type=layer_type)
        except ValidationError:
            raise self.error("the name is not a valid weight path component", "name") from None
        ctx = Expansion(KERAS, self.dtype, prefix=self.prefix, loc=(*self.loc, "config"))
        plan = ctx.tensor(
            owner, role, local, shape, init.params, init.params, init_field=key, fans=fans,
            overrides=overrides,
        )
        return with_override_stats(plan)

    def reject(self, key: str, allowed: Any = None) -> None:
        """Refuse an option that would change the weights in a way not supported here."""
        if self.config.get(key, allowed) not in (allowed, None, False, 0):
            raise self.error(f"{key}={self.config[key]!r} is not supported", key)


Builder = Callable[[KerasLayer], list[TensorPlan]]


def _bias(layer: KerasLayer, shape: Sequence[int], layer_type: str) -> list[TensorPlan]:
    if not layer.flag("use_bias", True):
        return []
    return [layer.tensor("bias", shape, "bias_initializer", ZEROS, "bias", layer_type)]


def dense(layer: KerasLayer) -> list[TensorPlan]:
    layer.reject("lora_rank")
    units = layer.size("units")
    kernel = layer.tensor(KERAS.dense.weight, KERAS.layout.dense_shape(layer.dim(-1), units),
                          "kernel_initializer", GLOROT, "weight", "linear")
    return [kernel, *_bias(layer, (units,), "linear")]


def _einsum_plans(layer: KerasLayer, sub: str, equation: str, bias_axes: str | None,
                  input_shape: Shape, partial: Sequence[Any], layer_type: str,
                  roles: tuple[str, str] = ("weight", "bias")) -> list[TensorPlan]:
    """An EinsumDense's kernel (fans from its einsum axes, as Keras 3.15 passes them to
    VarianceScaling) and bias, named ``<sub>kernel``/``<sub>bias``."""
    try:
        einsum = analyze_einsum(equation, bias_axes, input_shape, partial)
    except (ValueError, IndexError, TypeError) as error:
        raise layer.error(f"{sub}{error}") from None
    kernel_shape = einsum.kernel_shape
    fans = axes_fans(kernel_shape, einsum.input_axes, einsum.output_axes)
    plans = [layer.tensor(f"{sub}kernel", kernel_shape, "kernel_initializer", GLOROT,
                          roles[0], layer_type, fans=fans)]
    if einsum.bias_shape is not None:
        plans.append(layer.tensor(f"{sub}bias", einsum.bias_shape, "bias_initializer", ZEROS,
                                  roles[1], layer_type))
    return plans


def einsum_dense(layer: KerasLayer) -> list[TensorPlan]:
    layer.reject("lora_rank")
    target = layer.config.get("output_shape")
    partial = [target] if isinstance(target, int) else target
    if not isinstance(partial, list):
        raise layer.error(f"output_shape must be an integer or a list, got {target!r}",
                          "output_shape")
    bias_axes = layer.config.get("bias_axes")
    if not isinstance(bias_axes, str | None):
        raise layer.error(f"bias_axes must be a string, got {bias_axes!r}", "bias_axes")
    return _einsum_plans(layer, "", str(layer.config.get("equation")), bias_axes,
                         layer.shape(), partial, "einsum_dense")


def _channels(layer: KerasLayer) -> int:
    return layer.dim(channels_axis(layer.config))


def conv(rank: int, transposed: bool) -> Builder:
    def build(layer: KerasLayer) -> list[TensorPlan]:
        layer.reject("lora_rank")
        filters = layer.size("filters")
        kernel = layer.sizes("kernel_size", rank)
        channels = _channels(layer)
        groups = 1 if transposed else layer.size("groups", 1)
        if channels % groups or filters % groups:
            raise layer.error(
                f"input channels ({channels}) and filters ({filters}) must be divisible by "
                f"groups ({groups})", "groups")
        shape = KERAS.layout.conv_shape(channels, filters, kernel, groups, transposed)
        layer_type = f"conv{rank}d"
        weight = layer.tensor("kernel", shape, "kernel_initializer", GLOROT, "weight",
                              layer_type)
        return [weight, *_bias(layer, (filters,), layer_type)]

    return build


def depthwise(rank: int) -> Builder:
    def build(layer: KerasLayer) -> list[TensorPlan]:
        multiplier = layer.size("depth_multiplier", 1)
        kernel = layer.sizes("kernel_size", rank)
        channels = _channels(layer)
        layer_type = f"depthwise_conv{rank}d"
        # Keras' fans of (*k, in, M): fan_in = in * rf, as compute_fans gives for any kernel.
        weight = layer.tensor("kernel", (*kernel, channels, multiplier),
                              "depthwise_initializer", GLOROT, "weight", layer_type)
        return [weight, *_bias(layer, (channels * multiplier,), layer_type)]

    return build


def separable(rank: int) -> Builder:
    def build(layer: KerasLayer) -> list[TensorPlan]:
        multiplier = layer.size("depth_multiplier", 1)
        filters = layer.size("filters")
        kernel = layer.sizes("kernel_size", rank)
        channels = _channels(layer)
        layer_type = f"separable_conv{rank}d"
        return [
            layer.tensor("depthwise_kernel", (*kernel, channels, multiplier),
                         "depthwise_initializer", GLOROT, "depthwise", layer_type),
            layer.tensor("pointwise_kernel", (*(1,) * rank, channels * multiplier, filters),
                         "pointwise_initializer", GLOROT, "weight", layer_type),
            *_bias(layer, (filters,), layer_type),
        ]

    return build


def embedding(layer: KerasLayer) -> list[TensorPlan]:
    layer.reject("lora_rank")
    shape = (layer.size("input_dim"), layer.size("output_dim"))
    return [layer.tensor(KERAS.embedding.table, shape, "embeddings_initializer",
                         KerasInit(KERAS.embedding.init), "embedding", "embedding")]


def _axes_shape(layer: KerasLayer, axis: Any) -> tuple[int, ...]:
    axes = list(axis) if isinstance(axis, list | tuple) else [axis]
    if not axes or not all(isinstance(a, int) for a in axes):
        raise layer.error(f"axis must be an integer or a list of integers, got {axis!r}",
                          "axis")
    return tuple(layer.dim(a) for a in sorted(axes))


def _affine(layer: KerasLayer, shape: tuple[int, ...], scale: bool, center: bool,
            layer_type: str) -> list[TensorPlan]:
    plans = []
    if scale:
        plans.append(layer.tensor(NAMES.scale, shape, "gamma_initializer", ONES, "weight",
                                  layer_type))
    if center:
        plans.append(layer.tensor(NAMES.shift, shape, "beta_initializer", ZEROS, "bias",
                                  layer_type))
    return plans


def layer_normalization(layer: KerasLayer) -> list[TensorPlan]:
    shape = _axes_shape(layer, layer.config.get("axis", -1))
    rms = layer.flag("rms_scaling", False)
    return _affine(layer, shape, layer.flag("scale", True) or rms,
                   layer.flag("center", True) and not rms, "layer_norm")


def rms_normalization(layer: KerasLayer) -> list[TensorPlan]:
    shape = _axes_shape(layer, layer.config.get("axis", -1))
    return [layer.tensor(NAMES.rms_scale, shape, "scale_initializer", ONES, "weight",
                         "rms_norm")]


def batch_normalization(layer: KerasLayer) -> list[TensorPlan]:
    layer.reject("renorm")
    shape = _axes_shape(layer, layer.config.get("axis", -1))
    return [
        *_affine(layer, shape, layer.flag("scale", True), layer.flag("center", True),
                 "batch_norm"),
        layer.tensor(NAMES.running_mean, shape, "moving_mean_initializer", ZEROS,
                     "running_mean", "batch_norm"),
        layer.tensor(NAMES.running_var, shape, "moving_variance_initializer", ONES,
                     "running_var", "batch_norm"),
    ]


def group_normalization(layer: KerasLayer) -> list[TensorPlan]:
    axis = layer.config.get("axis", -1)
    channels = layer.dim(axis if isinstance(axis, int) else -1)
    groups = layer.config.get("groups", 32)
    groups = channels if groups == -1 else groups
    if not isinstance(groups, int) or groups < 1 or channels % groups:
        raise layer.error(f"{channels} channels do not divide into groups={groups!r}",
                          "groups")
    return _affine(layer, (channels,), layer.flag("scale", True), layer.flag("center", True),
                   "group_norm")


def recurrent(cell: str, gates: int, layer_type: str) -> Builder:
    """LSTM (gates i, f, c, o), GRU (z, r, h) and SimpleRNN: the tensors the keras
    convention lays out for one recurrent layer (``<cell>/kernel``, ``recurrent_kernel``,
    ``bias``; LSTM's forget slice one with ``unit_forget_bias``, a GRU's bias (2, 3u) with
    ``reset_after``), initialized by the config's initializers."""

    def build(layer: KerasLayer) -> list[TensorPlan]:
        layer.reject("stateful")
        units = layer.size("units")
        rules = KERAS.recurrent
        forget = (rules.forget_bias(units, layer.flag("unit_forget_bias", True))
                  if layer_type == "lstm" else ())
        split = layer_type == "gru" and layer.flag("reset_after", True)
        slots = rules.slots(gates, layer.dim(-1), units, units, layer.flag("use_bias", True),
                            split, forget, 0)
        return [
            layer.tensor(f"{cell}/{slot.name}", slot.shape, CONFIG_KEYS[slot.init_field],
                         KerasInit(slot.default), slot.role, layer_type,
                         overrides=slot.overrides)
            for slot in slots
        ]

    return build


def _projection(free_dims: int, bound_dims: int, output_dims: int) -> tuple[str, str]:
    """MultiHeadAttention's ``_build_proj_equation``: (equation, bias axes)."""
    letters = string.ascii_lowercase
    free = letters[:free_dims]
    bound = letters[free_dims:free_dims + bound_dims]
    out = letters[free_dims + bound_dims:free_dims + bound_dims + output_dims]
    return f"{free}{bound},{bound}{out}->{free}{out}", out


def multi_head_attention(layer: KerasLayer) -> list[TensorPlan]:
    """EinsumDense sublayers query, key, (gate), value, attention_output, each with the
    fans Keras derives from its einsum; kernels (E, H, key_dim) ... (H, value_dim, out)."""
    heads = layer.size("num_heads")
    key_dim = layer.size("key_dim")
    value_dim = layer.size("value_dim") if layer.config.get("value_dim") is not None else key_dim
    query = layer.shape("query_shape")
    value = layer.shape("value_shape")
    key = layer.shapes.get("key_shape") or value
    use_bias = layer.flag("use_bias", True)
    plans: list[TensorPlan] = []

    def project(sub: str, shape: Shape, head_size: int,
                roles: tuple[str, str] = ("weight", "bias")) -> None:
        equation, bias_axes = _projection(len(shape) - 1, 1, 2)
        partial = [None] * (len(shape) - 2) + [heads, head_size]
        plans.extend(_einsum_plans(layer, f"{sub}/", equation, bias_axes if use_bias else None,
                                   shape, partial, "multihead_attention", roles))

    project("query", query, key_dim)
    project("key", key, key_dim)
    if layer.flag("use_gate", False):
        project("gate", query, value_dim)
    project("value", value, value_dim)
    target = layer.config.get("output_shape")
    out = [target] if isinstance(target, int) else target or [query[-1]]
    if not (isinstance(out, list) and all(isinstance(v, int) and v >= 1 for v in out)):
        raise layer.error(f"cannot size the output projection from output_shape={target!r} "
                          f"and query shape {list(query)}", "output_shape")
    equation, bias_axes = _projection(len(query) - 1, 2, len(out))
    attended = (*query[:-1], heads, value_dim)
    partial = [None] * (len(query) - 2) + out
    plans.extend(_einsum_plans(layer, "attention_output/", equation,
                               bias_axes if use_bias else None, attended, partial,
                               "multihead_attention", ("out_weight", "out_bias")))
    return plans


BUILDERS: dict[str, Builder] = {
    "Dense": dense,
    "EinsumDense": einsum_dense,
    "Embedding": embedding,
    "LayerNormalization": layer_normalization,
    "RMSNormalization": rms_normalization,
    "BatchNormalization": batch_normalization,
    "GroupNormalization": group_normalization,
    "LSTM": recurrent("lstm_cell", 4, "lstm"),
    "GRU": recurrent("gru_cell", 3, "gru"),
    "SimpleRNN": recurrent("simple_rnn_cell", 1, "simple_rnn"),
    "MultiHeadAttention": multi_head_attention,
}
for _rank in (1, 2, 3):
    BUILDERS[f"Conv{_rank}D"] = conv(_rank, transposed=False)
    BUILDERS[f"Conv{_rank}DTranspose"] = conv(_rank, transposed=True)
for _rank in (1, 2):
    BUILDERS[f"DepthwiseConv{_rank}D"] = depthwise(_rank)
    BUILDERS[f"SeparableConv{_rank}D"] = separable(_rank)
