"""Output shapes of Keras layers, for layers whose input size is not in their config.

A layer's weights depend on its input shape (a Dense after a Flatten, a Conv after a
Conv). Models saved after being built carry it (``build_config``); hand-written ones do
not, so shapes are propagated from the inputs with Keras 3's own rules
(``keras/src/ops/operation_utils.py``, ``backend_utils.py``, the layers'
``compute_output_shape``). A shape is a tuple with the batch dimension first; ``None``
marks an unknown size, and ``output_shape`` returns ``None`` when the layer's output
cannot be derived (the importer then fails only if a later layer needs it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int | None, ...]
Output = Shape | list[Shape] | None


@dataclass(frozen=True)
class Call:
    """The tensors a layer is called on: positional (flattened) and keyword ones."""

    args: tuple[Shape | None, ...] = ()
    kwargs: dict[str, Shape | None] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def first(self) -> Shape | None:
        return self.args[0] if self.args else None


def as_shape(value: Any) -> Shape | None:
    """A JSON shape (list of ints and nulls) as a tuple, or ``None`` if it is not one."""
    if not isinstance(value, list | tuple):
        return None
    if all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in value):
        return tuple(value)
    return None


def tuple_of(value: Any, rank: int) -> tuple[int, ...]:
    """Keras' ``standardize_tuple``: an int repeated ``rank`` times, or the list itself."""
    if isinstance(value, int):
        return (value,) * rank
    return tuple(int(v) for v in value)


def channels_axis(config: dict[str, Any]) -> int:
    return 1 if config.get("data_format") == "channels_first" else -1


# ------------------------------------------------------------------------- einsum ----


@dataclass(frozen=True)
class Einsum:
    """What ``EinsumDense`` derives from its equation and input shape."""

    kernel_shape: tuple[int, ...]
    bias_shape: tuple[int, ...] | None
    output_shape: Shape
    input_axes: tuple[int, ...]
    output_axes: tuple[int, ...]


_EQUATIONS = (
    (re.compile(r"^([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$"), False),
    (re.compile(r"^0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)$"), True),
    (re.compile(r"^([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0$"), False),
)


def analyze_einsum(
    equation: str, bias_axes: str | None, input_shape: Shape, partial_output: Sequence[Any]
) -> Einsum:
    """Keras 3 ``_analyze_einsum_string``: kernel/bias shapes and the kernel's fan axes
    (weight axes found in the output are output axes, the others input axes)."""
    replaced = equation.replace("...", "0")
    matches = [(p.match(replaced), left) for p, left in _EQUATIONS if p.match(replaced)]
    if not matches:
        raise ValueError(
            f"invalid einsum equation {equation!r}: expected [X],[Y]->[Z], ...[X],[Y]->...[Z] "
            "or [X]...,[Y]->[Z]..."
        )
    match, left_elided = matches[0]
    input_spec, weight_spec, output_spec = match.groups()
    elided = len(input_shape) - len(input_spec)
    output: list[int | None] = [input_shape[0], *partial_output]
    if elided > 0 and left_elided:
        for i in range(1, elided):
            output.insert(1, input_shape[i])
    elif elided > 0:
        output.extend(input_shape[len(input_shape) - elided:])
    if left_elided:
        input_map = {d: i + elided - len(input_shape) for i, d in enumerate(input_spec)}
        output_map = {d: i + elided for i, d in enumerate(output_spec)}
    else:
        input_map = {d: i for i, d in enumerate(input_spec)}
        output_map = {d: i for i, d in enumerate(output_spec)}
    kernel, input_axes, output_axes = [], [], []
    for i, dim in enumerate(weight_spec):
        if dim in output_map:
            kernel.append(output[output_map[dim]])
            output_axes.append(i)
        elif dim in input_map:
            kernel.append(input_shape[input_map[dim]])
            input_axes.append(i)
        else:
            raise ValueError(f"weight dimension {dim!r} is in neither the input nor the output")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in kernel):
        raise ValueError(f"kernel shape {kernel} has an unknown or invalid size")
    bias = None
    if bias_axes:
        offset = elided if left_elided else 0
        sizes = {c: output[i + offset] for i, c in enumerate(output_spec)}
        if any(c not in output_spec for c in bias_axes):
            raise ValueError(f"bias axes {bias_axes!r} are not all in the output {output_spec!r}")
        first = min(output_spec.find(c) for c in bias_axes)
        bias = [sizes[c] if c in bias_axes else 1 for c in output_spec[first:]]
        if not left_elided:
            bias.extend([1] * max(elided, 0))
    return Einsum(tuple(kernel), tuple(bias) if bias else None, tuple(output),
                  tuple(input_axes), tuple(output_axes))


# ---------------------------------------------------------------- convolutions ----


def _spatial(shape: Shape, config: dict[str, Any]) -> tuple[int | None, ...]:
    return shape[2:] if channels_axis(config) == 1 else shape[1:-1]


def _with_spatial(shape: Shape, config: dict[str, Any], spatial: Sequence[int | None],
                  channels: int | None) -> Shape:
    if channels_axis(config) == 1:
        return (shape[0], channels, *spatial)
    return (shape[0], *spatial, channels)


def _padding_mode(config: dict[str, Any]) -> str:
    return str(config.get("padding", "valid")).lower()


def _conv_options(
    config: dict[str, Any], rank: int
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """A convolution's kernel_size, strides and dilation_rate, one per spatial dimension."""
    return (tuple_of(config["kernel_size"], rank), tuple_of(config.get("strides", 1), rank),
            tuple_of(config.get("dilation_rate", 1), rank))


def _sliding(
    size: int | None, window: int, stride: int, padding: str, dilation: int = 1
) -> int | None:
    """Keras' conv/pooling length: valid floor((n - d(k-1) - 1)/s) + 1, same ceil(n/s)."""
    if size is None:
        return None
    if padding == "valid":
        return (size - dilation * (window - 1) - 1) // stride + 1
    return (size - 1) // stride + 1


def conv_output(config: dict[str, Any], shape: Shape, rank: int, channels: int | None) -> Shape:
    kernel, strides, dilation = _conv_options(config, rank)
    padding = _padding_mode(config)
    spatial = [
        _sliding(n, k, s, padding, d)
        for n, k, s, d in zip(_spatial(shape, config), kernel, strides, dilation, strict=True)
    ]
    return _with_spatial(shape, config, spatial, channels)


def _transposed_length(
    size: int | None, kernel: int, stride: int, padding: str, output_padding: int | None,
    dilation: int,
) -> int | None:
    """Keras ``_get_output_shape_given_tf_padding``."""
    if size is None:
        return None
    kernel = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(kernel, stride) - kernel if output_padding is None else output_padding
        return (size - 1) * stride + kernel + extra
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + kernel % 2 + output_padding


def conv_transpose_output(config: dict[str, Any], shape: Shape, rank: int) -> Shape:
    kernel, strides, dilation = _conv_options(config, rank)
    padding = _padding_mode(config)
    out_pad = config.get("output_padding")
    out_pad = (None,) * rank if out_pad is None else tuple_of(out_pad, rank)
    spatial = [
        _transposed_length(n, k, s, padding, pad, d)
        for n, k, s, pad, d in zip(_spatial(shape, config), kernel, strides, out_pad, dilation,
                                   strict=True)
    ]
    return _with_spatial(shape, config, spatial, int(config["filters"]))


def _pooling(rank: int) -> Callable[[dict[str, Any], Shape], Shape]:
    def output(config: dict[str, Any], shape: Shape) -> Shape:
        pool = tuple_of(config.get("pool_size", 2), rank)
        strides = pool if config.get("strides") is None else tuple_of(config["strides"], rank)
        padding = _padding_mode(config)
        spatial = [
            _sliding(n, p, s, padding)
            for n, p, s in zip(_spatial(shape, config), pool, strides, strict=True)
        ]
        channels = shape[channels_axis(config)]
        return _with_spatial(shape, config, spatial, channels)

    return output


def _global_pooling(config: dict[str, Any], shape: Shape) -> Shape:
    channels = shape[channels_axis(config)]
    if config.get("keepdims"):
        return _with_spatial(shape, config, [1] * (len(shape) - 2), channels)
    return (shape[0], channels)


def _pairs(value: Any, rank: int) -> list[tuple[int, int]]:
    """ZeroPadding/Cropping amounts: an int, one pair (1-D) or a pair per dimension."""
    if isinstance(value, int):
        return [(value, value)] * rank
    if rank == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [(value[0], value[1])]
    return [(v, v) if isinstance(v, int) else (v[0], v[1]) for v in value]


def _padding(rank: int, sign: int, key: str) -> Callable[[dict[str, Any], Shape], Shape]:
    def output(config: dict[str, Any], shape: Shape) -> Shape:
        amounts = _pairs(config[key], rank)
        spatial = [
            None if n is None else n + sign * (a + b)
            for n, (a, b) in zip(_spatial(shape, config), amounts, strict=True)
        ]
        return _with_spatial(shape, config, spatial, shape[channels_axis(config)])

    return output


def _upsampling(rank: int) -> Callable[[dict[str, Any], Shape], Shape]:
    def output(config: dict[str, Any], shape: Shape) -> Shape:
        size = tuple_of(config.get("size", 2), rank)
        spatial = [None if n is None else n * f
                   for n, f in zip(_spatial(shape, config), size, strict=True)]
        return _with_spatial(shape, config, spatial, shape[channels_axis(config)])

    return output


# ----------------------------------------------------------------- reshaping ----


def _flatten(config: dict[str, Any], shape: Shape) -> Shape:
    rest = shape[1:]
    return (shape[0], None if None in rest else math.prod(rest))


def _reshape(config: dict[str, Any], shape: Shape) -> Shape | None:
    target = list(config["target_shape"])
    if -1 in target:
        known = shape[1:]
        if None in known:
            return (shape[0], *(None if t == -1 else t for t in target))
        others = math.prod(t for t in target if t != -1)
        target[target.index(-1)] = math.prod(known) // others if others else None
    return (shape[0], *target)


def _permute(config: dict[str, Any], shape: Shape) -> Shape:
    return (shape[0], *(shape[d] for d in config["dims"]))


def _rnn(config: dict[str, Any], shape: Shape, states: int) -> Output:
    units = int(config["units"])
    out = (shape[0], shape[1], units) if config.get("return_sequences") else (shape[0], units)
    if config.get("return_state"):
        return [out, *[(shape[0], units)] * states]
    return out


# ----------------------------------------------------------------- dispatch ----

PASS_THROUGH = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Activation", "ReLU",
    "LeakyReLU", "ELU", "Softmax", "Masking", "Identity", "UnitNormalization",
    "LayerNormalization", "BatchNormalization", "GroupNormalization", "RMSNormalization",
})
_MERGE = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
_SINGLE: dict[str, Callable[[dict[str, Any], Shape], Output]] = {
    "Dense": lambda c, s: (*s[:-1], int(c["units"])),
    "Embedding": lambda c, s: (*s, int(c["output_dim"])),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Permute": _permute,
    "RepeatVector": lambda c, s: (s[0], int(c["n"]), s[1]),
    "LSTM": lambda c, s: _rnn(c, s, 2),
    "GRU": lambda c, s: _rnn(c, s, 1),
    "SimpleRNN": lambda c, s: _rnn(c, s, 1),
    "EinsumDense": lambda c, s: analyze_einsum(
        c["equation"], c.get("bias_axes"), s, _partial(c["output_shape"])
    ).output_shape,
}
for _rank in (1, 2, 3):
    _SINGLE[f"Conv{_rank}D"] = lambda c, s, r=_rank: conv_output(c, s, r, int(c["filters"]))
    _SINGLE[f"Conv{_rank}DTranspose"] = lambda c, s, r=_rank: conv_transpose_output(c, s, r)
    _SINGLE[f"SeparableConv{_rank}D"] = lambda c, s, r=_rank: conv_output(
        c, s, r, int(c["filters"]))
    _SINGLE[f"DepthwiseConv{_rank}D"] = lambda c, s, r=_rank: conv_output(
        c, s, r, None if s[channels_axis(c)] is None
        else s[channels_axis(c)] * int(c.get("depth_multiplier", 1)))
    for _kind in ("Max", "Average"):
        _SINGLE[f"{_kind}Pooling{_rank}D"] = _pooling(_rank)
        _SINGLE[f"Global{_kind}Pooling{_rank}D"] = _global_pooling
    _SINGLE[f"ZeroPadding{_rank}D"] = _padding(_rank, 1, "padding")
    _SINGLE[f"Cropping{_rank}D"] = _padding(_rank, -1, "cropping")
    _SINGLE[f"UpSampling{_rank}D"] = _upsampling(_rank)


def _partial(value: Any) -> list[Any]:
    return [value] if isinstance(value, int) else list(value)


def _merge(class_name: str, config: dict[str, Any], shapes: Sequence[Shape]) -> Shape | None:
    if class_name == "Concatenate":
        axis = int(config.get("axis", -1))
        sizes = [s[axis] for s in shapes]
        out = list(shapes[0])
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)
    # Elementwise merges broadcast; Keras requires equal ranks in practice.
    return tuple(
        None if None in dims else max(dims) for dims in zip(*shapes, strict=False)
    )


def _attention(config: dict[str, Any], call: Call) -> Output:
    query = call.first
    if query is None:
        return None
    target = config.get("output_shape")
    out = (*query[:-1], *(_partial(target) if target else [query[-1]]))
    if call.options.get("return_attention_scores"):
        value = call.args[1] if len(call.args) > 1 else call.kwargs.get("value")
        heads = int(config["num_heads"])
        scores = (query[0], heads, *query[1:-1], *(value[1:-1] if value else [None]))
        return [out, scores]
    return out


def output_shape(class_name: str, config: dict[str, Any], call: Call) -> Output:
    """The layer's output shape(s) for this call, or ``None`` if they cannot be derived."""
    if any(a is None for a in call.args) and class_name != "MultiHeadAttention":
        return None
    try:
        if class_name == "MultiHeadAttention":
            return _attention(config, call)
        if class_name in _MERGE or class_name == "Concatenate":
            return _merge(class_name, config, call.args) if call.args else None
        if call.first is None:
            return None
        if class_name in PASS_THROUGH:
            return call.first
        if class_name in _SINGLE:
            return _SINGLE[class_name](config, call.first)
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
        return None  # a config this rule cannot read: the shape is unknown
    return None


KNOWN_WEIGHTLESS = PASS_THROUGH | _MERGE | frozenset({
    "Concatenate", "Flatten", "Reshape", "Permute", "RepeatVector", "InputLayer", "Lambda",
    "Dot",
    *(k for k in _SINGLE if "Pooling" in k or "Padding" in k or "Cropping" in k
      or "UpSampling" in k),
})
"""Layer classes without weights that the importer accepts (their shapes when known)."""
