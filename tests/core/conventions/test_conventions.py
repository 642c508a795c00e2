"""The conventions against the frameworks they describe, and their layouts against each other.

Layer-level parity (whole specs against real modules with ``load_state_dict``) is in
tests/core/layers; here each convention's own rules are checked where they are defined:
lookup, recurrent names and layouts against real torch ``nn.LSTM``/``nn.GRU`` and Keras
cells, the forget-gate bias against the one Keras builds, and the two layouts against each
other (the same weight, laid out either way, is the same map).
"""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pytest
import torch

os.environ["KERAS_BACKEND"] = "torch"  # chosen before keras is imported
import keras
from weightinit.core.conventions import CONVENTIONS, KERAS, TORCH, convention_of
from weightinit.core.fans import KERAS_LAYOUT, TORCH_LAYOUT
from weightinit.core.spec import Spec


def test_lookup_covers_exactly_the_spec_names():
    names = Spec.model_json_schema()["properties"]["convention"]["enum"]
    assert sorted(CONVENTIONS) == sorted(names)
    assert convention_of("torch") is TORCH and convention_of("keras") is KERAS


def test_unknown_convention_is_refused_by_name():
    with pytest.raises(ValueError, match="'jax'"):
        convention_of("jax")


@pytest.mark.parametrize(("name", "index", "expected"),
                         [(TORCH, 3, "blocks.3."), (KERAS, 3, "blocks_3/")])
def test_repeat_names(name, index, expected):
    assert name.repeat_name("blocks", index) == expected


# ------------------------------------------------------------- recurrent: torch ----

def _torch_recurrent(gates: int, module: torch.nn.RNNBase, proj: int = 0) -> list[tuple]:
    """(name, shape) of every tensor TORCH lays out for ``module``, in planning order."""
    rules, hidden = TORCH.recurrent, module.hidden_size
    directions = 2 if module.bidirectional else 1
    out = []
    for k in range(module.num_layers):
        inputs = module.input_size if k == 0 else (proj or hidden) * directions
        slots = rules.slots(gates, inputs, hidden, proj or hidden, module.bias, True, (), proj)
        for direction in range(directions):
            out += [(rules.path("m", "cell", k, direction, module.num_layers,
                                module.bidirectional, slot.name), slot.shape) for slot in slots]
    return out


@pytest.mark.parametrize(("gates", "make", "proj"), [
    (4, lambda: torch.nn.LSTM(5, 6, num_layers=2, bidirectional=True), 0),
    (4, lambda: torch.nn.LSTM(5, 6, num_layers=2, proj_size=3, bidirectional=True), 3),
    (3, lambda: torch.nn.GRU(4, 7, num_layers=3, bias=False), 0),
])
def test_torch_recurrent_names_and_shapes_are_the_state_dict(gates, make, proj):
    module = make()
    expected = [(f"m.{name}", tuple(p.shape)) for name, p in module.state_dict().items()]
    assert _torch_recurrent(gates, module, proj) == expected


def test_torch_recurrent_default_is_reset_parameters_bound():
    slots = TORCH.recurrent.slots(4, 5, 16, 16, True, True, (), 0)
    assert {(s.default.low, s.default.high) for s in slots} == {(-0.25, 0.25)}


# ------------------------------------------------------------- recurrent: keras ----

@pytest.mark.parametrize(("cell", "gates", "split"), [
    (lambda: keras.layers.LSTMCell(3), 4, False),
    (lambda: keras.layers.GRUCell(3), 3, True),
    (lambda: keras.layers.GRUCell(3, reset_after=False), 3, False),
])
def test_keras_recurrent_shapes_are_the_cell_weights(cell, gates, split):
    layer = cell()
    layer.build((None, 5))
    slots = KERAS.recurrent.slots(gates, 5, 3, 3, True, split, (), 0)
    weights = [(w.path.rsplit("/", 1)[1], tuple(w.shape)) for w in layer.weights]
    assert [(s.name, s.shape) for s in slots] == weights


def test_keras_forget_gate_bias_is_the_one_keras_builds():
    layer = keras.layers.LSTMCell(4)  # unit_forget_bias=True by default
    layer.build((None, 2))
    ones = np.flatnonzero(keras.ops.convert_to_numpy(layer.bias) == 1.0)
    (override,) = KERAS.recurrent.forget_bias(4, None)
    assert override.value == 1.0
    assert list(ones) == list(range(override.start, override.stop))
    assert KERAS.recurrent.forget_bias(4, False) == ()
    assert TORCH.recurrent.forget_bias(4, None) == ()  # torch has no such option


@pytest.mark.parametrize(("bidirectional", "layers"), [(False, 1), (True, 1), (True, 2)])
def test_keras_recurrent_paths_are_the_model_weight_paths(bidirectional, layers):
    inputs = keras.Input((7, 5))
    x = inputs
    for k in range(layers):
        name = "rnn" if layers == 1 else f"rnn_{k}"
        lstm = keras.layers.LSTM(3, name=name, return_sequences=True)
        x = (keras.layers.Bidirectional(lstm, name=name) if bidirectional else lstm)(x)
    model = keras.Model(inputs, x)
    directions = 2 if bidirectional else 1
    paths = [KERAS.recurrent.path("rnn", "lstm_cell", k, d, layers, bidirectional, local)
             for k in range(layers) for d in range(directions)
             for local in ("kernel", "recurrent_kernel", "bias")]
    assert paths == [w.path for w in model.weights]


# ------------------------------------------------------------------ attention ----

def test_torch_attention_names_and_shapes_are_the_state_dict():
    for kdim, bias, bias_kv in itertools.product((None, 3), (True, False), (True, False)):
        module = torch.nn.MultiheadAttention(8, 2, kdim=kdim, vdim=kdim, bias=bias,
                                             add_bias_kv=bias_kv)
        slots = TORCH.attention.slots(8, 2, kdim or 8, kdim or 8, None, None, bias, bias_kv)
        expected = [(name, tuple(p.shape)) for name, p in module.state_dict().items()]
        assert [(s.name, s.shape) for s in slots] == expected


def test_keras_attention_shapes_are_the_layer_weights():
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=5)
    layer.build((None, 4, 8), (None, 6, 7))
    slots = KERAS.attention.slots(8, 2, 7, 7, 3, 5, True, False)
    weights = [("/".join(w.path.split("/")[-2:]), tuple(w.shape)) for w in layer.weights]
    assert [(s.name, s.shape) for s in slots] == weights


# --------------------------------------------------------------------- layouts ----

def _to_keras(torch_weight: np.ndarray, transposed: bool) -> np.ndarray:
    """A torch conv weight moved into Keras' layout: (out, in/g, *k) -> (*k, in/g, out);
    transposed (in, out, *k) -> (*k, out, in)."""
    spatial = tuple(range(2, torch_weight.ndim))
    order = (*spatial, 1, 0)
    return torch_weight.transpose(order)


CONVS = [  # (in, out, kernel, groups, transposed)
    (6, 9, (3, 2), 3, False), (4, 4, (5,), 1, False), (4, 8, (1, 2, 3), 2, False),
    (6, 4, (3, 3), 1, True), (5, 3, (4,), 1, True),
]


@pytest.mark.parametrize(("in_c", "out_c", "kernel", "groups", "transposed"), CONVS)
def test_layouts_describe_the_same_convolution(in_c, out_c, kernel, groups, transposed):
    torch_shape = TORCH_LAYOUT.conv_shape(in_c, out_c, kernel, groups, transposed)
    keras_shape = KERAS_LAYOUT.conv_shape(in_c, out_c, kernel, groups, transposed)
    receptive = math.prod(kernel)
    for layout, shape in ((TORCH_LAYOUT, torch_shape), (KERAS_LAYOUT, keras_shape)):
        assert layout.conv_units(shape, groups, transposed) == (in_c, out_c, receptive)
        if not transposed:
            assert layout.conv_axes(shape) == (out_c, in_c // groups, tuple(kernel))
    weight = np.random.default_rng(0).standard_normal(torch_shape)
    keras_weight = _to_keras(weight, transposed)
    assert keras_weight.shape == keras_shape
    args = (groups, out_c // groups, in_c // groups, receptive, transposed)
    np.testing.assert_array_equal(TORCH_LAYOUT.grouped_matrix(weight, *args),
                                  KERAS_LAYOUT.grouped_matrix(keras_weight, *args))


def test_layouts_describe_the_same_dense_map():
    for layout in (TORCH_LAYOUT, KERAS_LAYOUT):
        assert layout.dense_units(layout.dense_shape(7, 3)) == (7, 3)
    assert TORCH_LAYOUT.dense_shape(7, 3)[::-1] == KERAS_LAYOUT.dense_shape(7, 3)
