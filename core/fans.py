"""Fan-in and fan-out of a weight tensor, per framework convention and layout.

The one place that knows tensor layouts. Rules (torch.nn.init and keras.initializers):

| layout            | torch                          | keras                              |
|-------------------|--------------------------------|------------------------------------|
| dense             | (out, in): fi=in, fo=out       | (in, out): fi=in, fo=out           |
| conv              | (out, in/g, *k): fi=in/g*rf,   | (*k, in/g, out): fi=in/g*rf,       |
|                   |   fo=out*rf                    |   fo=out*rf                        |
| transposed conv   | (in, out/g, *k): fi=out/g*rf,  | (*k, out, in): fi=out*rf,          |
|                   |   fo=in*rf                     |   fo=in*rf                         |
| generic (tensor)  | torch `_calculate_fan_in_and_fan_out` | keras `compute_fans`        |

Both frameworks compute fans from the shape alone with these formulas, so
``fans_from_shape`` reproduces them for any tensor laid out as the framework lays it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from typing import Literal

Convention = Literal["torch", "keras"]


@dataclass(frozen=True)
class Fans:
    """Fan-in and fan-out; ``None`` where the framework cannot compute one (1-D torch)."""

    fan_in: int | None
    fan_out: int | None


def torch_fans(shape: Sequence[int]) -> Fans:
    """torch ``_calculate_fan_in_and_fan_out``: (out, in, *k); undefined below 2-D."""
    if len(shape) < 2:
        return Fans(None, None)
    receptive_field = prod(shape[2:])
    return Fans(shape[1] * receptive_field, shape[0] * receptive_field)


def keras_fans(shape: Sequence[int]) -> Fans:
    """Keras 3 ``compute_fans``: scalars 1, vectors n, else (*rf, in, out)."""
    if len(shape) == 0:
        return Fans(1, 1)
    if len(shape) == 1:
        return Fans(shape[0], shape[0])
    if len(shape) == 2:
        return Fans(shape[0], shape[1])
    receptive_field = prod(shape[:-2])
    return Fans(shape[-2] * receptive_field, shape[-1] * receptive_field)


def fans_from_shape(shape: Sequence[int], convention: Convention) -> Fans:
    """The fans the named framework computes for a tensor of this shape."""
    return torch_fans(shape) if convention == "torch" else keras_fans(shape)


def dense_shape(in_features: int, out_features: int, convention: Convention) -> tuple[int, ...]:
    """Weight shape of a dense layer: torch (out, in), keras (in, out)."""
    if convention == "torch":
        return (out_features, in_features)
    return (in_features, out_features)


def conv_shape(
    in_channels: int,
    out_channels: int,
    kernel: Sequence[int],
    groups: int,
    transposed: bool,
    convention: Convention,
) -> tuple[int, ...]:
    """Weight shape of a (transposed, grouped) convolution in the convention's layout."""
    kernel = tuple(kernel)
    if convention == "torch":
        if transposed:
            return (in_channels, out_channels // groups, *kernel)
        return (out_channels, in_channels // groups, *kernel)
    if transposed:
        # Keras' ConvTranspose kernel is (*k, filters, in): it is the backward of a conv.
        return (*kernel, out_channels // groups, in_channels)
    return (*kernel, in_channels // groups, out_channels)


def explicit_fans(
    shape: Sequence[int], convention: Convention, fan_in: int | None, fan_out: int | None
) -> Fans:
    """Fans of a ``tensor`` layer: the given ones, else the convention's shape rule."""
    derived = fans_from_shape(shape, convention)
    return Fans(
        fan_in if fan_in is not None else derived.fan_in,
        fan_out if fan_out is not None else derived.fan_out,
    )
