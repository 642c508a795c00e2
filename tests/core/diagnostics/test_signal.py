"""Signal propagation: the analytic He/Glorot expectations, the measured probe, the flags.

Tolerances for measured values come from the spread of ``log(measured / analytic)``
over 16 model seeds of the 8 x 512 relu MLP below (batch 256), where it is set by the
particular weights, not by the probe (finite-width fluctuations, which grow with depth
as ``depth / width``, Hanin & Nica 2019): first layer forward std 0.004, last layer
backward std 0.0045, forward per-layer geometric-mean ratio std 0.031, backward 0.008.
Each bound below is about 5 of those standard deviations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from weightinit.core import Spec, SpecError, build_plan, plan_document
from weightinit.core.diagnostics.network import links_from_plan
from weightinit.core.diagnostics.signal import (
    LAYER_BAND,
    diagnose,
    generate_tensors,
    layer_activations,
    propagation,
    propagation_from_document,
)

WIDTH, DEPTH = 512, 8


def mlp(init: object, depth: int = DEPTH, width: int = WIDTH, seed: int = 0,
        convention: str = "torch", bias: object = "zeros") -> Spec:
    return Spec.model_validate({"seed": seed, "convention": convention, "layers": [
        {"type": "repeat", "name": "blocks", "count": depth, "layers": [
            {"type": "linear", "name": "fc", "in_features": width, "out_features": width,
             "weight_init": init, "bias_init": bias}]}]})


def series(document: dict, direction: str, source: str) -> list[float]:
    return [layer[direction][source] for layer in document["layers"]]


def analytic(spec: Spec, activations: object = "relu") -> dict:
    return propagation(build_plan(spec), None, activations)


def measured(spec: Spec, activations: object = "relu") -> dict:
    plan = build_plan(spec)
    return propagation(plan, generate_tensors(plan), activations)


SEED_EXAMPLE = Spec.model_validate({"seed": 1234, "convention": "torch", "layers": [
    {"type": "linear", "name": "fc1", "in_features": 100, "out_features": 64,
     "weight_init": "glorot_uniform", "bias_init": "zeros"},
    {"type": "linear", "name": "fc2", "in_features": 64, "out_features": 10,
     "weight_init": "glorot_uniform", "bias_init": "zeros"}]})


@pytest.mark.parametrize("init", [{"name": "kaiming_normal", "nonlinearity": "relu"},
                                  "he_uniform", "he_normal"])
def test_he_init_keeps_the_relu_forward_variance_constant(init: object) -> None:
    forward = series(analytic(mlp(init)), "forward", "analytic")
    # q_1 = fan_in * 2/fan_in * 1 (no relu before the first layer); then *2 *1/2 per layer.
    assert forward == pytest.approx([2.0] * DEPTH, rel=1e-9)


@pytest.mark.parametrize("init", ["glorot_uniform", "lecun_uniform", "xavier_uniform"])
def test_glorot_and_lecun_halve_the_relu_forward_variance_per_layer(init: object) -> None:
    forward = series(analytic(mlp(init)), "forward", "analytic")
    assert forward == pytest.approx([0.5**layer for layer in range(DEPTH)], rel=1e-9)


@pytest.mark.parametrize("init, gain", [("he_normal", 1.0), ("glorot_uniform", 0.5)])
def test_layer_gain_is_what_he_and_glorot_choose_the_variance_for(init, gain) -> None:
    layers = analytic(mlp(init))["layers"]  # relu after every layer
    assert [layer["layer_gain"]["analytic"] for layer in layers] == pytest.approx(
        [gain] * DEPTH)
    # Without an activation after the last layer, He's last layer doubles the signal.
    layers = analytic(mlp(init), {"blocks.7.fc": "linear"})["layers"]
    assert layers[-1]["layer_gain"]["analytic"] == pytest.approx(2 * gain)


def test_tanh_with_torchs_gain_is_stable_and_mean_field_matches_measured() -> None:
    """xavier gain 5/3 overshoots in the linear regime and tanh's saturation brings it
    back: the mean-field recursion (not a constant gain) predicts the measured values."""
    spec = mlp({"name": "xavier_normal", "gain": 5 / 3}, depth=6, width=256)
    document = measured(spec, "tanh")
    assert document["flags"] == []
    forward = series(document, "forward", "analytic")
    assert forward[0] == pytest.approx(25 / 9) and forward[-1] < 1.25
    # Spread of log(measured / analytic) over 12 model seeds: forward std <= 0.0123,
    # backward <= 0.028 (max |mean| 0.016); the bounds are 5 of those.
    assert series(document, "forward", "measured") == pytest.approx(forward, rel=0.06)
    backward = series(document, "backward", "analytic")
    assert series(document, "backward", "measured") == pytest.approx(backward, rel=0.14)


def test_backward_variance_follows_fan_out_and_the_relu_derivative() -> None:
    backward = series(analytic(mlp("lecun_uniform")), "backward", "analytic")
    # r_L = fan_out * 1/fan_in (equal widths) = 1, then * 1/2 per relu going back.
    assert backward == pytest.approx([0.5 ** (DEPTH - 1 - i) for i in range(DEPTH)], rel=1e-9)


def test_seed_example_matches_the_formulas_by_hand() -> None:
    document = analytic(SEED_EXAMPLE, {"fc1": "relu", "fc2": "softmax"})
    var1, var2 = 2 / (100 + 64), 2 / (64 + 10)
    q1 = 100 * var1
    assert series(document, "forward", "analytic") == pytest.approx([q1, 64 * var2 * 0.5 * q1])
    r2 = 10 * var2
    assert series(document, "backward", "analytic") == pytest.approx([64 * var1 * 0.5 * r2, r2])
    assert document["flags"] == []


def test_bias_second_moment_adds_to_the_forward_variance() -> None:
    # torch's default: weight and bias U(+-1/sqrt(fan_in)), variance 1/(3 fan_in) each.
    spec = Spec.model_validate({"seed": 0, "layers": [
        {"type": "linear", "name": "fc", "in_features": 300, "out_features": 10}]})
    assert series(analytic(spec), "forward", "analytic") == pytest.approx([1 / 3 + 1 / 900])


def test_measured_first_layer_matches_analytic() -> None:
    for init in ("he_normal", "glorot_uniform"):
        document = measured(mlp(init))
        first = document["layers"][0]["forward"]
        assert first["measured"] == pytest.approx(first["analytic"], rel=0.03)
        last = document["layers"][-1]["backward"]
        assert last["measured"] == pytest.approx(last["analytic"], rel=0.03)


@pytest.mark.parametrize("init, per_layer", [("he_normal", 1.0), ("glorot_uniform", 0.5)])
def test_measured_decay_per_layer_matches_analytic(init: str, per_layer: float) -> None:
    document = measured(mlp(init))
    forward = series(document, "forward", "measured")
    # Geometric mean of q_l / q_{l-1} over layers 2..L (layer 1 has no relu before it).
    forward_rate = math.exp(math.log(forward[-1] / forward[0]) / (DEPTH - 1))
    assert forward_rate == pytest.approx(per_layer, rel=0.16)
    backward = series(document, "backward", "measured")
    backward_rate = math.exp(math.log(backward[0] / backward[-1]) / (DEPTH - 1))
    expected_backward = 2 * per_layer * 0.5  # fan_out * Var(W) * 1/2, equal widths
    assert backward_rate == pytest.approx(expected_backward, rel=0.04)


def test_conv_probe_matches_real_convolutions() -> None:
    """The im2col probe (positions as independent samples) against torch's own conv ops
    on random images with the same generated weights, layer by layer."""
    torch = pytest.importorskip("torch")
    spec = Spec.model_validate({"seed": 5, "convention": "torch", "layers": [
        {"type": "conv2d", "name": "c1", "in_channels": 3, "out_channels": 64,
         "kernel_size": 3, "weight_init": "he_normal"},
        {"type": "conv2d", "name": "c2", "in_channels": 64, "out_channels": 128,
         "kernel_size": 3, "groups": 2, "weight_init": "he_normal"},
        {"type": "conv2d", "name": "c3", "in_channels": 128, "out_channels": 64,
         "kernel_size": 3, "transposed": True, "weight_init": "he_normal"}]})
    plan = build_plan(spec)
    tensors = generate_tensors(plan)
    probe = series(propagation(plan, tensors, "relu", batch=1024), "forward", "measured")
    w = {name: torch.from_numpy(value) for name, value in tensors.items()}
    images = torch.from_numpy(np.random.default_rng(0).standard_normal((8, 3, 40, 40)))
    y1 = torch.nn.functional.conv2d(images, w["c1.weight"], w["c1.bias"])
    y2 = torch.nn.functional.conv2d(y1.relu(), w["c2.weight"], w["c2.bias"], groups=2)
    y3 = torch.nn.functional.conv_transpose2d(y2.relu(), w["c3.weight"], w["c3.bias"])
    y3 = y3[:, :, 2:-2, 2:-2]  # drop the borders that see fewer than 3x3 inputs
    real = [float((y**2).mean()) for y in (y1, y2, y3)]
    # Both estimate the same expectation for these fixed weights. Spread of the log of
    # each estimate: real convs over 20 image seeds <= 0.0082, the probe over 10 probe
    # seeds <= 0.018; their difference has std <= 0.02, and 0.10 is 5 of those.
    assert probe == pytest.approx(real, rel=0.10)


def test_conv_connections_count_groups_kernel_and_flatten() -> None:
    spec = Spec.model_validate({"seed": 0, "convention": "keras", "layers": [
        {"type": "conv2d", "name": "c1", "in_channels": 4, "out_channels": 32,
         "kernel_size": 3},
        {"type": "conv2d", "name": "c2", "in_channels": 32, "out_channels": 64,
         "kernel_size": [3, 5], "groups": 4},
        {"type": "linear", "name": "head", "in_features": 64 * 49, "out_features": 10}]})
    links = links_from_plan(build_plan(spec))
    assert [(link.connections_in, link.connections_out) for link in links] == [
        (4 * 9, 32 * 9), (8 * 15, 16 * 15), (64 * 49, 10)]
    assert links[2].receptive == 49 and not links[2].sliding


def test_document_without_spec_gives_the_same_analytic_series() -> None:
    spec = Spec.model_validate({"seed": 0, "convention": "torch", "layers": [
        {"type": "conv2d", "name": "c1", "in_channels": 3, "out_channels": 16,
         "kernel_size": 3, "weight_init": "he_uniform"},
        {"type": "conv2d", "name": "c2", "in_channels": 16, "out_channels": 32,
         "kernel_size": 3, "groups": 4},
        {"type": "linear", "name": "fc", "in_features": 32 * 16, "out_features": 10}]})
    plan = build_plan(spec)
    from_plan = propagation(plan, None, "tanh")
    from_document = propagation_from_document(plan_document(plan), "tanh")
    assert from_document["layers"] == from_plan["layers"]


def test_bad_init_normal_std_1_is_flagged_as_exploding() -> None:
    document = measured(mlp({"name": "normal", "mean": 0.0, "std": 1.0}, width=256))
    # Forward factor per layer: 256 * 1 * 1/2 = 128, far above the band.
    layer_flags = {(f["index"], f["source"]) for f in document["flags"]
                   if f["scope"] == "layer" and f["direction"] == "forward"}
    assert layer_flags == {(i, s) for i in range(DEPTH) for s in ("analytic", "measured")}
    assert all(f["kind"] == "exploding" for f in document["flags"])
    assert all(layer["flagged"] for layer in document["layers"])


def test_he_init_raises_no_flag() -> None:
    assert measured(mlp("he_normal"))["flags"] == []


def test_glorot_in_a_deep_relu_net_is_flagged_only_where_the_product_leaves_the_band() -> None:
    flags = analytic(mlp("glorot_uniform", depth=12))["flags"]
    assert LAYER_BAND[0] < 0.5 and not [f for f in flags if f["scope"] == "layer"]
    # forward 0.5**l < 1e-2 from l = 7 (0-based); backward 0.5**(11 - l) < 1e-2 up to l = 4
    forward = {f["index"] for f in flags if f["direction"] == "forward"}
    backward = {f["index"] for f in flags if f["direction"] == "backward"}
    assert forward == set(range(7, 12)) and backward == set(range(5))
    assert {f["kind"] for f in flags} == {"vanishing"}


def test_torch_default_init_vanishes_per_layer() -> None:
    # torch's Linear default U(+-1/sqrt(fan_in)) without biases: fan_in * Var(W) = 1/3,
    # times 1/2 through each relu: 1/3 at the first layer, 1/6 after, below the band's 0.4.
    spec = Spec.model_validate({"seed": 0, "layers": [
        {"type": "repeat", "name": "blocks", "count": DEPTH, "layers": [
            {"type": "linear", "name": "fc", "in_features": WIDTH, "out_features": WIDTH,
             "bias": False}]}]})
    document = analytic(spec)
    assert series(document, "forward", "analytic") == pytest.approx(
        [1 / 3 * (1 / 6) ** layer for layer in range(DEPTH)])
    layer_flags = {f["index"] for f in document["flags"] if f["scope"] == "layer"}
    assert layer_flags == set(range(DEPTH))


def test_overflow_is_reported_as_null_and_flagged() -> None:
    spec = mlp({"name": "normal", "mean": 0.0, "std": 1000.0}, depth=60, width=16)
    document = measured(spec)
    assert document["layers"][-1]["forward"]["measured"] is None
    assert any(f["value"] is None and f["kind"] == "exploding" for f in document["flags"])


def test_non_sequential_models_say_why() -> None:
    spec = Spec.model_validate({"seed": 0, "layers": [
        {"type": "linear", "name": "a", "in_features": 8, "out_features": 8},
        {"type": "layer_norm", "name": "ln", "normalized_shape": 8}]})
    document = propagation(build_plan(spec), None)
    assert not document["sequential"] and "ln" in document["reason"]
    spec = Spec.model_validate({"seed": 0, "layers": [
        {"type": "linear", "name": "a", "in_features": 8, "out_features": 8},
        {"type": "linear", "name": "b", "in_features": 9, "out_features": 8}]})
    assert "b takes 9 inputs" in propagation(build_plan(spec), None)["reason"]


def test_activation_errors_name_the_field() -> None:
    links = links_from_plan(build_plan(SEED_EXAMPLE))
    with pytest.raises(SpecError) as error:
        layer_activations(links, {"fc1": "softmax"})
    assert error.value.loc == ("activations", "fc1")
    with pytest.raises(SpecError) as error:
        layer_activations(links, {"fc3": "relu"})
    assert error.value.loc == ("activations", "fc3")
    with pytest.raises(SpecError) as error:
        layer_activations(links, "swish")
    assert error.value.loc == ("activations",)
    assert layer_activations(links, {"fc2": "softmax"}) == ["relu", "softmax"]


def test_diagnose_observed_variance_is_the_generated_tensors_variance() -> None:
    plan = build_plan(SEED_EXAMPLE)
    tensors = generate_tensors(plan)
    document = diagnose(plan, tensors=tensors, histogram_of=["fc1.weight"])
    rows = {row["name"]: row for row in document["tensors"]}
    assert rows["fc1.weight"]["variance"] == pytest.approx(float(tensors["fc1.weight"].var()))
    assert rows["fc1.bias"]["variance"] == 0.0
    assert list(document["histograms"]) == ["fc1.weight"]
