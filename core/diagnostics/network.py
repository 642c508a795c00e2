"""A sequential stack of dense/conv layers, seen as a chain of linear maps between units.

Signal-propagation diagnostics (``core.diagnostics``) need, for each layer in depth order,
how many inputs each output unit sums (``connections_in``), how many outputs each input
unit feeds (``connections_out``), the weight's second moment and how to view the weight
as a matrix. This module builds that chain (``Link`` list) from a plan, where layer
parameters such as ``groups`` and ``transposed`` are known, or from a plan/report
document, where they are inferred from shapes.

A convolution is treated as a dense map over its receptive field (im2col): an output
unit sums ``in_channels / groups * prod(kernel)`` inputs, and with stride 1 an input unit
feeds ``out_channels / groups * prod(kernel)`` outputs. Strides, padding and image
borders are ignored (weightinit ignores them too: they do not change the weights). A
``linear`` layer after a conv whose ``in_features`` is a multiple of the conv's channels
is read as a flatten of ``in_features / channels`` positions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from weightinit.core.conventions import Convention, convention_of
from weightinit.core.fans import Layout
from weightinit.core.layers import Layer
from weightinit.core.layers.dense import Conv, Linear
from weightinit.core.layers.generic import Repeat
from weightinit.core.plan import Plan

DENSE_TYPES = ("linear", "conv1d", "conv2d", "conv3d")


class NotSequential(ValueError):
    """The model is not a plain chain of linear/conv layers; the message says where."""


@dataclass(frozen=True)
class Link:
    """One layer of the chain: its units, connections and weight statistics.

    ``receptive`` is the number of input positions an output unit sees per channel (the
    kernel's size; for a flatten, the flattened positions); ``sliding`` says whether an
    input unit is shared by ``receptive`` outputs (a convolution) or seen once (a flatten).
    """

    layer: str
    layer_type: str
    weight: str
    bias: str | None
    layout: Layout
    transposed: bool
    groups: int
    in_channels: int
    out_channels: int
    receptive: int
    sliding: bool
    weight_second_moment: float
    bias_second_moment: float
    fan_in: int | None
    fan_out: int | None

    @property
    def connections_in(self) -> int:
        """Inputs summed by one output unit: the forward fan."""
        return self.in_channels // self.groups * self.receptive

    @property
    def connections_out(self) -> int:
        """Outputs fed by one input unit (stride 1): the backward fan."""
        return self.out_channels // self.groups * (self.receptive if self.sliding else 1)

    def matrix(self, weight: np.ndarray) -> np.ndarray:
        """The weight as ``(groups, out/groups, in/groups, receptive)`` float64."""
        groups, receptive = self.groups, self.receptive
        out_g, in_g = self.out_channels // groups, self.in_channels // groups
        w = np.asarray(weight, dtype=np.float64)
        return self.layout.grouped_matrix(w, groups, out_g, in_g, receptive, self.transposed)

    def describe(self) -> dict[str, Any]:
        """The link as the diagnostics document shows it."""
        return {
            "layer": self.layer,
            "type": self.layer_type,
            "weight": self.weight,
            "bias": self.bias,
            "in_units": self.in_channels,
            "out_units": self.out_channels,
            "receptive": self.receptive,
            "groups": self.groups,
            "fan_in": self.fan_in,
            "fan_out": self.fan_out,
            "connections_in": self.connections_in,
            "connections_out": self.connections_out,
            "weight_second_moment": self.weight_second_moment,
            "bias_second_moment": self.bias_second_moment,
        }


@dataclass(frozen=True)
class _Weights:
    """What a link needs to know about a layer's tensors, from a plan or a document."""

    layer: str
    layer_type: str
    weight: str
    bias: str | None
    shape: tuple[int, ...]
    weight_second_moment: float
    bias_second_moment: float
    fan_in: int | None
    fan_out: int | None
    groups: int | None = None  # None: infer from the previous layer
    transposed: bool = False


def _second_moment(variance: float, mean: float) -> float:
    """``E[w^2] = Var[w] + E[w]^2``, what a weight contributes to the signal's scale."""
    return variance + mean * mean  # a float product overflows to inf; ** would raise


def _units(item: _Weights, layout: Layout, groups: int) -> tuple[int, int, int]:
    """(in_channels, out_channels, receptive) of a weight in the convention's layout."""
    if item.layer_type == "linear":
        return (*layout.dense_units(item.shape), 1)
    return layout.conv_units(item.shape, groups, item.transposed)


def _inferred_groups(item: _Weights, layout: Layout, previous: Link | None) -> int:
    """Groups of a conv from a document: previous channels over the weight's in/groups."""
    if item.groups is not None:
        return item.groups
    if item.layer_type == "linear" or previous is None or item.transposed:
        return 1
    per_group = layout.conv_axes(item.shape)[1]
    channels = previous.out_channels
    return channels // per_group if channels % per_group == 0 else 1


def _chain(items: Sequence[_Weights], layout: Layout) -> list[Link]:
    """Link the layers in order, checking that each takes what the previous one gives."""
    if not items:
        raise NotSequential("the model has no linear or conv layers")
    links: list[Link] = []
    for item in items:
        previous = links[-1] if links else None
        groups = _inferred_groups(item, layout, previous)
        in_units, out_units, receptive = _units(item, layout, groups)
        sliding = item.layer_type != "linear"
        if previous is not None and in_units != previous.out_channels:
            flatten = (
                item.layer_type == "linear"
                and previous.layer_type != "linear"
                and in_units % previous.out_channels == 0
            )
            if not flatten:
                raise NotSequential(
                    f"{item.layer} takes {in_units} inputs but {previous.layer} gives "
                    f"{previous.out_channels}: not a sequential stack"
                )
            receptive, in_units = in_units // previous.out_channels, previous.out_channels
        links.append(
            Link(
                item.layer, item.layer_type, item.weight, item.bias, layout,
                item.transposed, groups, in_units, out_units, receptive, sliding,
                item.weight_second_moment, item.bias_second_moment, item.fan_in, item.fan_out,
            )
        )
    return links


def _walk(layers: Sequence[Layer], convention: Convention,
          prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, layer model) of every non-repeat layer, in spec order (as Repeat names them)."""
    for layer in layers:
        if isinstance(layer, Repeat):
            for index in range(layer.count):
                yield from _walk(layer.layers, convention, prefix + layer.prefix(index, convention))
        else:
            yield prefix + layer.name, layer


def links_from_plan(plan: Plan) -> list[Link]:
    """The chain of a plan's model, in spec order (raises ``NotSequential``)."""
    spec = plan.spec
    if spec.layers is None:
        raise NotSequential("signal propagation needs a layers spec")
    by_role = {(output.plan.layer, output.plan.role): output.plan for output in plan.outputs}
    convention = convention_of(spec.convention)
    items = []
    for path, layer in _walk(spec.layers, convention):
        if not isinstance(layer, Linear | Conv):
            raise NotSequential(
                f"{path} is a {layer.type} layer: signal propagation covers stacks of "
                "linear and conv layers only"
            )
        weight, bias = by_role.get((path, "weight")), by_role.get((path, "bias"))
        if weight is None or (layer.bias and bias is None):
            raise NotSequential(f"{path}: its tensors are not all in the plan (select?)")
        items.append(
            _Weights(
                path, layer.type, weight.name, bias.name if bias else None, weight.shape,
                _second_moment(weight.init.expected_variance, weight.init.expected_mean),
                _second_moment(bias.init.expected_variance, bias.init.expected_mean)
                if bias else 0.0,
                weight.fans.fan_in, weight.fans.fan_out,
                groups=getattr(layer, "groups", 1),
                transposed=getattr(layer, "transposed", False),
            )
        )
    return _chain(items, convention.layout)


def links_from_document(document: dict[str, Any]) -> list[Link]:
    """The chain from a plan or report document alone (no spec): groups are inferred from
    the previous layer's channels and convolutions are taken as not transposed.

    The document lists tensors in file order, which is spec order unless layers have
    different dtypes (the file puts wider dtypes first); mixed dtypes are refused.
    """
    entries = document.get("tensors", [])
    if len({entry["dtype"] for entry in entries}) > 1:
        raise NotSequential("tensors of different dtypes: file order may not be layer order")
    layers: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.get("layer_type") not in DENSE_TYPES:
            raise NotSequential(
                f"{entry['name']} belongs to a {entry.get('layer_type')} layer: signal "
                "propagation covers stacks of linear and conv layers only"
            )
        layers.setdefault(entry["layer"], {})[entry["role"]] = entry
    items = []
    for path, roles in layers.items():
        weight, bias = roles.get("weight"), roles.get("bias")
        if weight is None:
            raise NotSequential(f"{path}: no weight in the document")
        items.append(
            _Weights(
                path, weight["layer_type"], weight["name"], bias["name"] if bias else None,
                tuple(weight.get("full_shape", weight["shape"])),
                _second_moment(weight["expected_variance"], weight["expected_mean"]),
                _second_moment(bias["expected_variance"], bias["expected_mean"]) if bias else 0.0,
                weight["fan_in"], weight["fan_out"],
            )
        )
    try:
        convention = convention_of(document.get("convention", "torch"))
    except ValueError as error:
        raise NotSequential(str(error)) from None
    return _chain(items, convention.layout)
