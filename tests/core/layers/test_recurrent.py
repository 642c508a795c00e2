"""``lstm`` and ``gru`` against torch's ``nn.LSTM``/``nn.GRU`` and Keras' ``LSTM``/``GRU``."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from layer_parity import (
    assert_all_same_distribution,
    assert_loads_strictly,
    holder,
    keras_signature,
    keras_stacked,
    min_numel,
    our_signature,
    ours_stacked,
    seed_count,
    spec_of,
    torch_stacked,
)
from weightinit.core import SpecError, build_plan, plan_document

nn = torch.nn
L = keras.layers
INPUT, HIDDEN = 5, 16

TORCH_CASES = {
    "lstm_stacked_bidirectional": (
        {"type": "lstm", "num_layers": 2, "bidirectional": True},
        lambda: nn.LSTM(INPUT, HIDDEN, num_layers=2, bidirectional=True),
    ),
    "lstm_projected": (
        {"type": "lstm", "num_layers": 2, "bidirectional": True, "proj_size": 3},
        lambda: nn.LSTM(INPUT, HIDDEN, num_layers=2, bidirectional=True, proj_size=3),
    ),
    "lstm_without_bias": (
        {"type": "lstm", "bias": False}, lambda: nn.LSTM(INPUT, HIDDEN, bias=False)
    ),
    "gru_stacked_bidirectional": (
        {"type": "gru", "num_layers": 2, "bidirectional": True},
        lambda: nn.GRU(INPUT, HIDDEN, num_layers=2, bidirectional=True),
    ),
}


def _layer(extra, **more):
    return {"name": "rnn", "input_size": INPUT, "hidden_size": HIDDEN, **extra, **more}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_torch_rnn_loads_strictly_with_torch_names_and_dtypes(tmp_path, case):
    extra, factory = TORCH_CASES[case]
    assert_loads_strictly(spec_of("torch", [_layer(extra)]), holder("rnn", factory()),
                          tmp_path)


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_torch_rnn_matches_torch_default_distribution(case):
    extra, factory = TORCH_CASES[case]
    seeds = seed_count(min_numel(v.shape for v in factory().state_dict().values()))
    ours = ours_stacked("torch", [_layer(extra)], seeds)
    assert_all_same_distribution(ours, torch_stacked(lambda: holder("rnn", factory()), seeds))


def _sequential(layers):
    return lambda: keras.Sequential([keras.Input((7, INPUT)), *layers()], name="model")


KERAS_CASES = {
    "lstm": ({"type": "lstm"}, _sequential(lambda: [L.LSTM(HIDDEN, name="rnn")])),
    "lstm_stacked_bidirectional": (
        {"type": "lstm", "num_layers": 2, "bidirectional": True},
        _sequential(lambda: [
            L.Bidirectional(L.LSTM(HIDDEN, return_sequences=True, name="rnn_0"), name="rnn_0"),
            L.Bidirectional(L.LSTM(HIDDEN, name="rnn_1"), name="rnn_1"),
        ]),
    ),
    "lstm_without_forget_bias": (
        {"type": "lstm", "unit_forget_bias": False},
        _sequential(lambda: [L.LSTM(HIDDEN, unit_forget_bias=False, name="rnn")]),
    ),
    "lstm_without_bias": (
        {"type": "lstm", "bias": False},
        _sequential(lambda: [L.LSTM(HIDDEN, use_bias=False, name="rnn")]),
    ),
    "gru": ({"type": "gru"}, _sequential(lambda: [L.GRU(HIDDEN, name="rnn")])),
    "gru_reset_before": (
        {"type": "gru", "reset_after": False},
        _sequential(lambda: [L.GRU(HIDDEN, reset_after=False, name="rnn")]),
    ),
    "gru_stacked_bidirectional": (
        {"type": "gru", "num_layers": 2, "bidirectional": True},
        _sequential(lambda: [
            L.Bidirectional(L.GRU(HIDDEN, return_sequences=True, name="rnn_0"), name="rnn_0"),
            L.Bidirectional(L.GRU(HIDDEN, name="rnn_1"), name="rnn_1"),
        ]),
    ),
}


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_keras_rnn_has_keras_weight_paths(case):
    extra, build = KERAS_CASES[case]
    assert our_signature(spec_of("keras", [_layer(extra)])) == keras_signature(build)


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_keras_rnn_matches_keras_default_distribution(case):
    extra, build = KERAS_CASES[case]
    # Kernels are the smallest random tensors (biases are constant): (INPUT, 3 HIDDEN).
    seeds = seed_count(INPUT * 3 * HIDDEN)
    assert_all_same_distribution(
        ours_stacked("keras", [_layer(extra)], seeds), keras_stacked(build, seeds)
    )


def test_keras_lstm_bias_expectations_include_the_forget_gate_ones():
    tensors = {t["name"]: t for t in plan_document(build_plan(spec_of("keras", [_layer(
        {"type": "lstm"})])))["tensors"]}
    bias = tensors["rnn/lstm_cell/bias"]
    assert bias["overrides"] == [{"start": HIDDEN, "stop": 2 * HIDDEN, "value": 1.0}]
    # A quarter of the elements are one, the rest zero.
    assert (bias["expected_mean"], bias["expected_variance"]) == (0.25, 0.1875)


def test_torch_rnn_default_is_uniform_over_one_over_sqrt_hidden():
    (tensor, *_) = plan_document(build_plan(spec_of("torch", [_layer({"type": "gru"})])))[
        "tensors"]
    bound = 1.0 / np.sqrt(HIDDEN)
    assert tensor["initializer"] == {"name": "uniform", "low": -bound, "high": bound}


def test_rnn_overrides_apply_per_role_and_dtype_to_every_tensor():
    layer = _layer(
        {"type": "lstm", "proj_size": 4}, dtype="bfloat16",
        weight_init={"name": "xavier_uniform"}, recurrent_init="orthogonal",
        bias_init="zeros", projection_init={"name": "normal", "std": 0.1},
    )
    tensors = plan_document(build_plan(spec_of("torch", [layer])))["tensors"]
    names = {t["name"]: t["initializer"]["name"] for t in tensors}
    assert names == {
        "rnn.weight_ih_l0": "xavier_uniform", "rnn.weight_hh_l0": "orthogonal",
        "rnn.bias_ih_l0": "zeros", "rnn.bias_hh_l0": "zeros", "rnn.weight_hr_l0": "normal",
    }
    assert {t["dtype"] for t in tensors} == {"bfloat16"}
    recurrent = ours_stacked("torch", [{**layer, "dtype": "float64"}], 1)["rnn.weight_hh_l0"][0]
    # torch's orthogonal_ on (4h, proj): orthonormal columns.
    np.testing.assert_allclose(recurrent.T @ recurrent, np.eye(4), atol=1e-12)


@pytest.mark.parametrize(
    ("convention", "extra", "field"),
    [
        ("keras", {"type": "lstm", "proj_size": 4}, "proj_size"),
        ("torch", {"type": "lstm", "proj_size": HIDDEN}, "proj_size"),
        ("torch", {"type": "lstm", "unit_forget_bias": True}, "unit_forget_bias"),
        ("torch", {"type": "lstm", "projection_init": "zeros"}, "projection_init"),
        ("torch", {"type": "gru", "reset_after": False}, "reset_after"),
    ],
)
def test_options_the_framework_lacks_are_spec_errors(convention, extra, field):
    with pytest.raises(SpecError) as caught:
        build_plan(spec_of(convention, [_layer(extra)]))
    assert caught.value.loc[-1] == field
