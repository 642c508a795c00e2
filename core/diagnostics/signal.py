"""Signal-propagation diagnostics: how activation and gradient variance change with depth.

For a sequential stack of linear/conv layers (``weightinit.core.diagnostics.network``)
with an activation after each layer, two series, each analytic and measured:

* forward, ``q_l``: the mean square of layer ``l``'s pre-activations for unit-variance
  Gaussian inputs. Analytic (He et al., 2015; in general the mean-field recursion of
  Poole et al., 2016): ``q_l = connections_in * E[W^2] * E[f_{l-1}(z)^2] + E[b^2]`` with
  ``z ~ N(0, q_{l-1})`` and ``q_0 = 1`` (no activation before the first layer); for relu
  ``E[f(z)^2] = q/2``, for tanh about ``q`` while small, less once it saturates
  (``weightinit.core.diagnostics.activations``).
* backward, ``r_l``: the mean square of the gradient with respect to layer ``l``'s input,
  for a unit-variance gradient at the last layer's pre-activations. Analytic:
  ``r_l = connections_out * E[W^2] * E[f_l'(z)^2] * r_{l+1}`` with ``z ~ N(0, q_l)``
  (relu 1/2) and ``r_{L+1} = 1``.

Measured: ``batch`` Gaussian inputs are pushed through the generated weights and a
Gaussian gradient is pulled back. A convolution is applied as a dense map on patches
whose ``receptive`` positions are rows of the batch under independent random
permutations: positions of an image are taken as independent samples, which is what the
analytic formula assumes too. The probe's randomness is a numpy ``Generator`` with a fixed
seed: diagnostics are not part of the byte contract.

Flags: a layer whose gain ``E[x_l^2] / E[x_{l-1}^2]`` (what the layer and its activation
do to the mean square of the signal, ``x_0`` the unit input; the quantity He and Glorot
choose the weight variance for) is outside ``LAYER_BAND``, or whose cumulative ``q_l`` or
``r_l`` is outside ``CUMULATIVE_BAND``. The per-layer band (0.4, 2.5) is a little wider
than a factor of 2 each way because textbook inits sit exactly on it: Glorot halves the
signal through each relu, He's last layer (no relu after it) doubles it. One such layer
is harmless; their compounding over depth is what the cumulative band catches. Backward
ratios per layer are shown but not flagged: they also contain ``fan_out / fan_in``, a
width change no initializer can avoid (Glorot's compromise), and over depth those width
factors telescope, so again the cumulative band judges them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from weightinit.core.diagnostics.activations import (
    HIDDEN,
    NAMES,
    OUTPUT_ONLY,
    backward_gain,
    forward_second_moment,
)
from weightinit.core.diagnostics.histograms import histogram
from weightinit.core.diagnostics.network import (
    Link,
    NotSequential,
    links_from_document,
    links_from_plan,
)
from weightinit.core.errors import SpecError
from weightinit.core.generate import ChunkStream
from weightinit.core.plan import Plan
from weightinit.core.stats import moments_of

ACTIVATIONS = NAMES
LAYER_BAND = (0.4, 2.5)
CUMULATIVE_BAND = (1e-2, 1e2)
DEFAULT_BATCH = 256


def layer_activations(
    links: Sequence[Link], activations: str | Mapping[str, str] = "relu"
) -> list[str]:
    """The activation after each link: one name for all, or a map by layer path (layers
    not in the map get ``relu``). Raises ``SpecError`` at ``activations`` when invalid."""
    names = {link.layer for link in links}
    if isinstance(activations, str):
        chosen = {link.layer: activations for link in links}
        where: dict[str, tuple[str, ...]] = {link.layer: ("activations",) for link in links}
    else:
        for layer in activations:
            if layer not in names:
                raise SpecError(("activations", layer), f"no linear/conv layer named {layer!r}")
        chosen = {link.layer: activations.get(link.layer, "relu") for link in links}
        where = {layer: ("activations", layer) for layer in names}
    result = []
    for position, link in enumerate(links):
        name = chosen[link.layer]
        if name not in ACTIVATIONS:
            raise SpecError(where[link.layer], f"unknown activation {name!r}; known: "
                            f"{', '.join(ACTIVATIONS)}")
        if name in OUTPUT_ONLY and position < len(links) - 1:
            raise SpecError(where[link.layer], f"{name} is an output activation: only the last "
                            f"layer may use it, not {link.layer}")
        result.append(name)
    return result


@dataclass(frozen=True)
class Series:
    """Per layer: ``forward`` (pre-activation mean square ``q_l``), ``output`` (after the
    layer's activation, ``E[x_l^2]``; an output-only activation counts as linear) and
    ``backward`` (gradient mean square at the layer's input, ``r_l``)."""

    forward: list[float]
    output: list[float]
    backward: list[float]

    def layer_gains(self) -> list[float]:
        """``E[x_l^2] / E[x_{l-1}^2]`` (``E[x_0^2] = 1``): what one layer and its activation
        do to the signal, the quantity He and Glorot choose the weight variance for."""
        received = [1.0, *self.output[:-1]]
        return [out / before if before else math.inf
                for out, before in zip(self.output, received, strict=True)]


def _hidden(name: str) -> str:
    """The activation as the propagation sees it: an output-only one ends the network."""
    return "linear" if name in OUTPUT_ONLY else name


def analytic_series(links: Sequence[Link], activations: Sequence[str]) -> Series:
    """The mean-field series from fans and expected weight moments alone."""
    forward, output, received = [], [], 1.0  # E[x^2] entering the layer: the unit input
    for index, link in enumerate(links):
        q = link.connections_in * link.weight_second_moment * received + link.bias_second_moment
        forward.append(q)
        received = forward_second_moment(_hidden(activations[index]), q)
        output.append(received)
    backward, r = [0.0] * len(links), 1.0
    for index in reversed(range(len(links))):
        link = links[index]
        gain = 1.0 if index == len(links) - 1 else backward_gain(activations[index],
                                                                  forward[index])
        r = link.connections_out * link.weight_second_moment * gain * r
        backward[index] = r
    return Series(forward, output, backward)


def _mean_square(values: np.ndarray) -> float:
    # An empty tensor (a layer of size 0) carries no signal: 0, not numpy's NaN warning.
    return float(np.mean(np.square(values))) if values.size else 0.0


def measured_series(
    links: Sequence[Link],
    tensors: Mapping[str, np.ndarray],
    activations: Sequence[str],
    *,
    batch: int = DEFAULT_BATCH,
    probe_seed: int = 0,
) -> Series:
    """The series measured with Gaussian probes through the generated weights."""
    rng = np.random.default_rng(probe_seed)
    x = rng.standard_normal((batch, links[0].in_channels))
    identity = np.arange(batch)
    # Kept per layer for the backward pass: the activation's derivative at the layer's
    # pre-activations (float32: a statistic, not weights), not the pre-activations.
    matrices, perms, derivatives, forward, output = [], [], [], [], []
    y = x
    with np.errstate(all="ignore"):  # an exploding init overflows to inf: that is the finding
        for index, link in enumerate(links):
            if index:
                hidden = HIDDEN[activations[index - 1]]
                derivatives.append(hidden.derivative(y).astype(np.float32))
                x = hidden.function(y)
                output.append(_mean_square(x))
            matrix = link.matrix(tensors[link.weight])
            groups, out_g, in_g, receptive = matrix.shape
            matrix = matrix.reshape(groups, out_g, in_g * receptive)
            perm = [identity] + [rng.permutation(batch) for _ in range(receptive - 1)]
            patches = np.stack([x[p] for p in perm], axis=2)  # (batch, in, receptive)
            patches = patches.reshape(batch, groups, in_g * receptive).transpose(1, 0, 2)
            y = np.matmul(patches, matrix.transpose(0, 2, 1)).transpose(1, 0, 2)
            y = y.reshape(batch, link.out_channels)
            if link.bias is not None:
                y = y + np.asarray(tensors[link.bias], dtype=np.float64)
            matrices.append(matrix)
            perms.append(perm)
            del patches, x
            forward.append(_mean_square(y))
        output.append(_mean_square(HIDDEN[_hidden(activations[-1])].function(y)))
        del y
        backward = [0.0] * len(links)
        grad = rng.standard_normal((batch, links[-1].out_channels))
        for index in reversed(range(len(links))):
            link, matrix = links[index], matrices[index]
            if index < len(links) - 1:
                grad = grad * derivatives.pop()
            groups, out_g, _ = matrix.shape
            grouped = grad.reshape(batch, groups, out_g).transpose(1, 0, 2)
            patch_grad = np.matmul(grouped, matrix).transpose(1, 0, 2)
            patch_grad = patch_grad.reshape(batch, link.in_channels, link.receptive)
            if link.sliding:  # an input unit sits in `receptive` patches: sum their gradients
                grad = np.zeros((batch, link.in_channels))
                for k, perm in enumerate(perms[index]):
                    grad[perm] += patch_grad[:, :, k]
                backward[index] = _mean_square(grad)
            else:  # flatten: each position is its own unit; carry position 0 (identity)
                backward[index] = _mean_square(patch_grad)
                grad = patch_grad[:, :, 0]
    return Series(forward, output, backward)


def _outside(value: float, band: tuple[float, float]) -> str | None:
    if not math.isfinite(value) or value > band[1]:
        return "exploding"
    if value < band[0]:
        return "vanishing"
    return None


def find_flags(links: Sequence[Link], series: Mapping[str, Series]) -> list[dict[str, Any]]:
    """Layers where the signal vanishes or explodes, per source (analytic, measured)."""
    flags = []
    for source, values in series.items():
        gains = values.layer_gains()
        for index, link in enumerate(links):
            checks = [
                ("forward", "layer", gains[index], LAYER_BAND),
                ("forward", "cumulative", values.forward[index], CUMULATIVE_BAND),
                ("backward", "cumulative", values.backward[index], CUMULATIVE_BAND),
            ]
            for direction, scope, value, band in checks:
                kind = _outside(value, band)
                if kind:
                    flags.append({"layer": link.layer, "index": index, "direction": direction,
                                  "scope": scope, "kind": kind, "source": source,
                                  "value": _json_number(value)})
    return flags


def _json_number(value: float) -> float | None:
    """JSON has no inf/NaN: an overflowed measurement is reported as null."""
    return float(value) if math.isfinite(value) else None


def _ratios(values: list[float], first: float, backward: bool) -> list[float | None]:
    ratios = []
    for index, value in enumerate(values):
        if backward:
            before = values[index + 1] if index + 1 < len(values) else first
        else:
            before = values[index - 1] if index else first
        ratios.append(_json_number(value / before) if before and math.isfinite(before) else None)
    return ratios


def _document(batch: int | None, probe_seed: int | None) -> dict[str, Any]:
    return {
        "sequential": False, "reason": None, "batch": batch, "probe_seed": probe_seed,
        "input_variance": 1.0, "layer_band": list(LAYER_BAND),
        "cumulative_band": list(CUMULATIVE_BAND), "layers": [], "flags": [],
    }


def _fill(
    document: dict[str, Any],
    links: Sequence[Link],
    activations: Sequence[str],
    series: Mapping[str, Series],
) -> dict[str, Any]:
    """Per layer: the link, its activation, each series by source with ratios; flags."""
    flags = find_flags(links, series)
    layers = [{**link.describe(), "activation": activations[i], "flagged": False}
              for i, link in enumerate(links)]
    for flag in flags:
        layers[flag["index"]]["flagged"] = True
    for source, values in series.items():
        for direction in ("forward", "backward"):
            column = getattr(values, direction)
            ratios = _ratios(column, 1.0, backward=direction == "backward")
            for layer, value, ratio in zip(layers, column, ratios, strict=True):
                entry = layer.setdefault(direction, {})
                entry[source] = _json_number(value)
                entry[f"{source}_ratio"] = ratio
        for layer, output, gain in zip(layers, values.output, values.layer_gains(), strict=True):
            layer.setdefault("output", {})[source] = _json_number(output)
            layer.setdefault("layer_gain", {})[source] = _json_number(gain)
    document.update(sequential=True, layers=layers, flags=flags)
    return document


def propagation(
    plan: Plan,
    tensors: Mapping[str, np.ndarray] | None,
    activations: str | Mapping[str, str] = "relu",
    *,
    batch: int = DEFAULT_BATCH,
    probe_seed: int = 0,
) -> dict[str, Any]:
    """The signal-propagation document of a plan; measured only when ``tensors`` are given.

    A model that is not a sequential linear/conv stack gets ``sequential: false`` and the
    reason, not an error: its other diagnostics still make sense.
    """
    document = _document(batch if tensors is not None else None,
                         probe_seed if tensors is not None else None)
    try:
        links = links_from_plan(plan)
    except NotSequential as error:
        document["reason"] = str(error)
        return document
    acts = layer_activations(links, activations)
    series = {"analytic": analytic_series(links, acts)}
    if tensors is not None:
        series["measured"] = measured_series(
            links, tensors, acts, batch=batch, probe_seed=probe_seed
        )
    return _fill(document, links, acts, series)


def propagation_from_document(
    document: Mapping[str, Any], activations: str | Mapping[str, str] = "relu"
) -> dict[str, Any]:
    """The analytic propagation from a plan or report document alone (no weights, so
    nothing measured); see ``core.propagation.links_from_document`` for what is inferred."""
    result = _document(None, None)
    try:
        links = links_from_document(dict(document))
    except NotSequential as error:
        result["reason"] = str(error)
        return result
    acts = layer_activations(links, activations)
    return _fill(result, links, acts, {"analytic": analytic_series(links, acts)})


def generate_tensors(plan: Plan) -> dict[str, np.ndarray]:
    """Every tensor of the plan in memory, as float64 arrays of their output shapes."""
    parts: dict[str, list[np.ndarray]] = defaultdict(list)
    for chunk in ChunkStream(plan):
        parts[chunk.output.name].append(chunk.data)
    return {
        output.name: np.concatenate(parts[output.name]).astype(np.float64).reshape(output.shape)
        for output in plan.outputs
    }


def variance_table(plan: Plan, tensors: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per tensor, expected vs observed mean and variance, in file order."""
    rows = []
    for output in plan.outputs:
        init = output.plan.init
        moments = moments_of(tensors[output.name])
        rows.append({
            "name": output.name, "layer": output.plan.layer,
            "layer_type": output.plan.layer_type, "role": output.plan.role,
            "shape": list(output.shape), "dtype": output.plan.dtype,
            "initializer": init.config["name"],
            "fan_in": output.plan.fans.fan_in, "fan_out": output.plan.fans.fan_out,
            "expected_mean": init.expected_mean, "expected_variance": init.expected_variance,
            **moments.as_report(),
        })
    return rows


def diagnose(
    plan: Plan,
    activations: str | Mapping[str, str] = "relu",
    *,
    tensors: Mapping[str, np.ndarray] | None = None,
    histogram_of: Sequence[str] | None = None,
    bins: int = 50,
    batch: int = DEFAULT_BATCH,
    probe_seed: int = 0,
) -> dict[str, Any]:
    """Generate (unless ``tensors`` are given) and diagnose: the variance table, signal
    propagation, and histograms of ``histogram_of`` (default: every tensor)."""
    if tensors is None:
        tensors = generate_tensors(plan)
    by_name = {output.name: output for output in plan.outputs}
    names = list(by_name) if histogram_of is None else list(histogram_of)
    for index, name in enumerate(names):
        if name not in by_name:
            raise SpecError(("tensor",) if histogram_of and len(names) == 1 else
                            ("tensor", index), f"no tensor named {name!r} in this model")
    return {
        "spec_sha256": plan.spec_sha256,
        "seed": plan.spec.seed,
        "convention": plan.spec.convention,
        "tensors": variance_table(plan, tensors),
        "propagation": propagation(
            plan, tensors, activations, batch=batch, probe_seed=probe_seed
        ),
        "histograms": {
            name: histogram(tensors[name], by_name[name].plan.init, bins) for name in names
        },
    }
