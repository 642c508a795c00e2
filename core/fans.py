"""Weight layouts and the fan-in and fan-out a framework computes from them.

The one place that knows where a weight's axes sit. A ``Layout`` is one framework's
arrangement (``TORCH_LAYOUT``, ``KERAS_LAYOUT``; a convention names its layout in
``core.conventions``). Rules (torch.nn.init and keras.initializers):

| layout            | torch                          | keras                              |
|-------------------|--------------------------------|------------------------------------|
| dense             | (out, in): fi=in, fo=out       | (in, out): fi=in, fo=out           |
| conv              | (out, in/g, *k): fi=in/g*rf,   | (*k, in/g, out): fi=in/g*rf,       |
|                   |   fo=out*rf                    |   fo=out*rf                        |
| transposed conv   | (in, out/g, *k): fi=out/g*rf,  | (*k, out, in): fi=out*rf,          |
|                   |   fo=in*rf                     |   fo=in*rf                         |
| generic (tensor)  | torch `_calculate_fan_in_and_fan_out` | keras `compute_fans`        |

Both frameworks compute fans from the shape alone with these formulas, so
``Layout.fans`` reproduces them for any tensor laid out as the framework lays it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Literal, TypeVar

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")


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


@dataclass(frozen=True)
class Layout:
    """Where one framework puts a weight's axes, and the fans it derives from a shape.

    ``matrix_flatten`` is the framework's matrix view of an N-D tensor (what orthogonal
    initializers factor): ``trailing`` keeps dim 0 as rows, ``leading`` keeps the last
    dim as columns.
    """

    name: str
    matrix_flatten: Literal["trailing", "leading"]

    def fans(self, shape: Sequence[int]) -> Fans:
        """The fans the framework computes for a tensor of this shape."""
        raise NotImplementedError

    def explicit_fans(
        self, shape: Sequence[int], fan_in: int | None, fan_out: int | None
    ) -> Fans:
        """Fans of a ``tensor`` layer: the given ones, else the shape rule."""
        derived = self.fans(shape)
        return Fans(
            fan_in if fan_in is not None else derived.fan_in,
            fan_out if fan_out is not None else derived.fan_out,
        )

    def dense_shape(self, in_features: int, out_features: int) -> tuple[int, ...]:
        """Weight shape of a dense map (also each gate block of a recurrent layer)."""
        raise NotImplementedError

    def conv_shape(
        self, in_channels: int, out_channels: int, kernel: Sequence[int], groups: int,
        transposed: bool,
    ) -> tuple[int, ...]:
        """Weight shape of a (transposed, grouped) convolution."""
        raise NotImplementedError

    def conv_axes(self, axes: Sequence[T]) -> tuple[T, T, tuple[T, ...]]:
        """(out, in/groups, kernel) of a convolution kernel's axes (its shape, or an index
        per axis), not transposed."""
        raise NotImplementedError

    def dense_units(self, shape: Sequence[int]) -> tuple[int, int]:
        """(in_features, out_features) of a dense weight."""
        raise NotImplementedError

    def conv_units(
        self, shape: Sequence[int], groups: int, transposed: bool
    ) -> tuple[int, int, int]:
        """(in_channels, out_channels, receptive field) of a convolution weight."""
        raise NotImplementedError

    def grouped_matrix(
        self, weight: np.ndarray, groups: int, out_g: int, in_g: int, receptive: int,
        transposed: bool,
    ) -> np.ndarray:
        """The weight viewed as ``(groups, out/groups, in/groups, receptive)``."""
        raise NotImplementedError


@dataclass(frozen=True)
class _OutInLayout(Layout):
    """torch: output axis first, then the input axis, then the kernel: (out, in/g, *k);
    a transposed conv swaps the channel axes, (in, out/g, *k)."""

    def fans(self, shape: Sequence[int]) -> Fans:
        return torch_fans(shape)

    def dense_shape(self, in_features: int, out_features: int) -> tuple[int, ...]:
        return (out_features, in_features)

    def conv_shape(
        self, in_channels: int, out_channels: int, kernel: Sequence[int], groups: int,
        transposed: bool,
    ) -> tuple[int, ...]:
        if transposed:
            return (in_channels, out_channels // groups, *kernel)
        return (out_channels, in_channels // groups, *kernel)

    def conv_axes(self, axes: Sequence[T]) -> tuple[T, T, tuple[T, ...]]:
        return axes[0], axes[1], tuple(axes[2:])

    def dense_units(self, shape: Sequence[int]) -> tuple[int, int]:
        return shape[1], shape[0]

    def conv_units(
        self, shape: Sequence[int], groups: int, transposed: bool
    ) -> tuple[int, int, int]:
        receptive = prod(shape[2:])
        if transposed:
            return shape[0], shape[1] * groups, receptive
        return shape[1] * groups, shape[0], receptive

    def grouped_matrix(
        self, weight: np.ndarray, groups: int, out_g: int, in_g: int, receptive: int,
        transposed: bool,
    ) -> np.ndarray:
        if not transposed:  # (out, in/g, *k) or (out, in)
            return weight.reshape(groups, out_g, in_g, receptive)
        return weight.reshape(groups, in_g, out_g, receptive).transpose(0, 2, 1, 3)


@dataclass(frozen=True)
class _InOutLayout(Layout):
    """Keras: the kernel first, then the input axis, then the output: (*k, in/g, out);
    a transposed conv is the backward of a conv, (*k, out, in)."""

    def fans(self, shape: Sequence[int]) -> Fans:
        return keras_fans(shape)

    def dense_shape(self, in_features: int, out_features: int) -> tuple[int, ...]:
        return (in_features, out_features)

    def conv_shape(
        self, in_channels: int, out_channels: int, kernel: Sequence[int], groups: int,
        transposed: bool,
    ) -> tuple[int, ...]:
        if transposed:
            return (*kernel, out_channels // groups, in_channels)
        return (*kernel, in_channels // groups, out_channels)

    def conv_axes(self, axes: Sequence[T]) -> tuple[T, T, tuple[T, ...]]:
        return axes[-1], axes[-2], tuple(axes[:-2])

    def dense_units(self, shape: Sequence[int]) -> tuple[int, int]:
        return shape[0], shape[1]

    def conv_units(
        self, shape: Sequence[int], groups: int, transposed: bool
    ) -> tuple[int, int, int]:
        receptive = prod(shape[:-2])
        if transposed:
            return shape[-1], shape[-2], receptive
        return shape[-2] * groups, shape[-1], receptive

    def grouped_matrix(
        self, weight: np.ndarray, groups: int, out_g: int, in_g: int, receptive: int,
        transposed: bool,
    ) -> np.ndarray:
        if not transposed:  # (*k, in/g, out) or (in, out); flatten is (pos, ch)
            return weight.reshape(receptive, in_g, groups, out_g).transpose(2, 3, 1, 0)
        return weight.reshape(receptive, out_g, in_g).transpose(1, 2, 0)[None]  # (*k, out, in)


TORCH_LAYOUT: Layout = _OutInLayout("torch", "trailing")
KERAS_LAYOUT: Layout = _InOutLayout("keras", "leading")
