"""``keras_model`` import against the real Keras 3 (torch backend, no TensorFlow).

For small Sequential, Functional and nested models: our tensor names, shapes and dtypes
equal the ``variable.path``s of ``keras.models.model_from_json(model.to_json())``; our
values follow Keras' own initialization in distribution (defaults and explicit
initializer configs); layers without a ``build_config`` get their input shapes propagated;
unknown layer classes are 422s that name the layer.

Statistics (``layers/layer_parity.py``): per tensor, the values of several seeds pooled
(about 5,000 a side), two-sample Kolmogorov-Smirnov and Brown-Forsythe tests at
``ALPHA = 1e-6`` each. This module compares 130 tensors, two tests each, so a correct
import fails any of them with probability below 260 * 1e-6 = 0.03 %; seeds are fixed, so a
run is reproducible. At that size KS rejects a CDF gap of 0.054 (a uniform bound off by
6 %) and Brown-Forsythe a scale off by 10 %: a wrong fan (EinsumDense's rank-3 heuristic
instead of its einsum axes, for instance) is a factor of 2 or more.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from layers.layer_parity import (  # noqa: E402  (tests/core/layers, no package)
    assert_all_same_distribution,
    generate,
    seed_count,
    stacked,
)
from weightinit.core import Spec, SpecError, build_plan  # noqa: E402
from weightinit.core.keras.shapes import Call, output_shape  # noqa: E402

L = keras.layers
inits = keras.initializers


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Keras' Orthogonal runs torch's QR on tiny matrices: threads only add contention."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mha() -> Any:
    query, value = keras.Input((10, 32)), keras.Input((6, 24))
    out = L.MultiHeadAttention(4, 8, name="mha")(query, value)
    out = L.LayerNormalization(name="ln")(out)
    out = L.MultiHeadAttention(2, 16, value_dim=8, output_shape=12, use_gate=True,
                               name="gated")(out, value, value)
    return keras.Model([query, value], out, name="attention")


def _nested() -> Any:
    encoder = keras.Sequential([keras.Input((6,)), L.Dense(20, name="enc")], name="encoder")
    head_input = keras.Input((20,))
    head = keras.Model(head_input, L.Dense(16, name="head_dense")(head_input), name="head")
    unbuilt = keras.Sequential([L.Dense(12, name="inner"), L.BatchNormalization(name="bn")],
                               name="unbuilt")
    inputs = keras.Input((10,), name="x")
    hidden = encoder(L.Dense(6, name="pre")(inputs))
    hidden = L.Concatenate()([head(hidden), unbuilt(hidden)])
    return keras.Model(inputs, L.Dense(4, name="out")(hidden), name="nested")


def _graph() -> Any:
    """TimeDistributed, an LSTM's states, a layer shared by two calls, merges."""
    frames = keras.Input((5, 8, 8, 3), name="frames")
    steps = L.TimeDistributed(L.Conv2D(8, 3), name="td_conv")(frames)
    steps = L.TimeDistributed(L.Flatten(), name="td_flat")(steps)
    sequence, hidden, cell = L.LSTM(16, return_sequences=True, return_state=True,
                                    name="lstm")(steps)
    shared = L.Dense(16, name="shared")
    state = shared(shared(L.Add()([hidden, cell])))
    pooled = L.GlobalAveragePooling1D()(sequence)
    return keras.Model(frames, L.Dense(4, name="out")(L.Concatenate()([state, pooled])),
                       name="graph")


MODELS = {
    "dense_einsum_sequential": lambda: keras.Sequential([
        keras.Input((6, 8)), L.Dense(24), L.Dropout(0.1, name="dropout"),
        L.EinsumDense("abc,cde->abde", (None, 4, 5), bias_axes="de"),
        L.Reshape((6, 20)), L.Flatten(), L.Dense(16),
    ], name="seq"),
    "conv2d_functional": lambda: (lambda x: keras.Model(x, L.Dense(8)(
        L.GlobalAveragePooling2D()(L.GroupNormalization(4)(L.BatchNormalization()(
            L.SeparableConv2D(16, 3, depth_multiplier=2)(
                L.DepthwiseConv2D(3, depth_multiplier=4)(
                    L.Conv2DTranspose(8, 3)(L.Conv2D(16, 3)(x)))))))), name="cnn"))(
        keras.Input((8, 8, 3))),
    "conv1d_conv3d": lambda: keras.Sequential([
        keras.Input((12, 4)), L.Conv1D(16, 3), L.Conv1DTranspose(8, 3),
        L.DepthwiseConv1D(3, depth_multiplier=4), L.SeparableConv1D(16, 3),
        L.Reshape((8, 4, 4, 1)), L.Conv3D(8, 2), L.Conv3DTranspose(4, 2),
    ]),
    "recurrent": lambda: keras.Sequential([
        keras.Input((7,), dtype="int32"), L.Embedding(50, 12),
        L.SimpleRNN(16, return_sequences=True), L.LSTM(16, return_sequences=True),
        L.GRU(16, return_sequences=True), L.GRU(16, reset_after=False, return_sequences=True),
        L.Bidirectional(L.LSTM(8, return_sequences=True)), L.Bidirectional(L.GRU(8)),
    ]),
    "attention_functional": _mha,
    "nested_models": _nested,
    "graph_functional": _graph,
}


@functools.cache
def _saved(case: str) -> str:
    return MODELS[case]().to_json()


def _json(case: str) -> dict[str, Any]:
    """The case's ``model.to_json()`` as an object (each model is built once)."""
    return json.loads(_saved(case))


def _spec(model_json: dict[str, Any], seed: int = 0, **extra: Any) -> Spec:
    return Spec.model_validate(
        {"seed": seed, "convention": "keras", "keras_model": model_json, **extra})


def _ours(model_json: dict[str, Any], **extra: Any) -> list[tuple[str, tuple, str]]:
    """Our tensors in file order: model order within each dtype, wider dtypes first."""
    return [(o.name, tuple(o.shape), o.plan.dtype)
            for o in build_plan(_spec(model_json, **extra)).outputs]


def _keras(model_json: dict[str, Any]) -> list[tuple[str, tuple, str]]:
    """The rebuilt model's weights in the file's order (wider dtypes first, stable)."""
    model = keras.models.model_from_json(json.dumps(model_json))
    width = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
    rows = [(w.path, tuple(w.shape), keras.backend.standardize_dtype(w.dtype))
            for w in model.weights]
    return sorted(rows, key=lambda row: -width[row[2]])


def _without(value: Any, keys: tuple[str, ...]) -> Any:
    """The JSON without these keys anywhere (and, with "shape", without tensor shapes)."""
    if isinstance(value, list):
        return [_without(item, keys) for item in value]
    if not isinstance(value, dict):
        return value
    out = {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if value.get("class_name") == "__keras_tensor__" and "shape" in keys:
        out["config"] = {k: v for k, v in value["config"].items() if k != "shape"}
    return out


# ------------------------------------------------------------------------ names ----


@pytest.mark.parametrize("case", sorted(MODELS))
def test_names_shapes_and_dtypes_equal_model_from_json(case):
    model_json = _json(case)
    assert _ours(model_json) == _keras(model_json)


@pytest.mark.parametrize("case", sorted(MODELS))
def test_input_shapes_are_propagated_without_build_config(case):
    full = _json(case)
    unbuilt = _without(full, ("build_config", "build_input_shape"))  # Keras needs shapes
    ours = _ours(_without(full, ("build_config", "build_input_shape", "shape")))
    assert ours == _keras(unbuilt)


def test_python_built_sequential_prefix_is_absent_as_in_the_json_rebuilt_model():
    model = keras.Sequential([keras.Input((5,)), L.Dense(3, name="d")], name="seq")
    assert [w.path for w in model.weights] == ["seq/d/kernel", "seq/d/bias"]
    ours = [name for name, _, _ in _ours(json.loads(model.to_json()))]
    rebuilt = keras.models.model_from_json(model.to_json())
    assert ours == [w.path for w in rebuilt.weights] == ["d/kernel", "d/bias"]


def test_layer_dtype_policies_keep_their_variable_dtypes():
    model = keras.Sequential([
        keras.Input((4,)), L.Dense(3, dtype="float16", name="half"),
        L.Dense(3, dtype="mixed_bfloat16", name="mixed"), L.Dense(2, name="plain"),
    ])
    rows = {name: dtype for name, _, dtype in _ours(json.loads(model.to_json()),
                                                  dtype="bfloat16")}
    # float16 variables stay float16; float32 ones (mixed included) take the request dtype.
    assert rows["half/kernel"] == "float16"
    assert rows["mixed/kernel"] == rows["plain/kernel"] == "bfloat16"


# ----------------------------------------------------------------- distributions ----


def _random_numel(plan) -> int:
    constant = ("zeros", "ones", "constant")
    return min(o.numel for o in plan.outputs if o.plan.init.config["name"] not in constant)


def _compare_with_keras(model_json: dict[str, Any]) -> None:
    seeds = seed_count(_random_numel(build_plan(_spec(model_json))))
    ours = stacked(generate(_spec(model_json, seed)) for seed in range(seeds))

    def keras_weights(seed: int) -> dict[str, np.ndarray]:
        keras.utils.set_random_seed(seed)
        model = keras.models.model_from_json(json.dumps(model_json))
        return {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}

    assert_all_same_distribution(ours, stacked(keras_weights(s) for s in range(seeds)))


@pytest.mark.parametrize("case", sorted(MODELS))
def test_default_init_matches_keras_in_distribution(case):
    _compare_with_keras(_json(case))


def _explicit() -> Any:
    """Every initializer key of the supported layers, set; random vectors have >= 192
    values so that few seeds are needed (about 5,000 values a side)."""
    return keras.Sequential([
        keras.Input((6, 6, 4)),
        L.Conv2D(16, 3, kernel_initializer=inits.VarianceScaling(3.0, "fan_out", "uniform"),
                 bias_initializer=inits.Constant(0.5), name="conv"),
        L.DepthwiseConv2D(2, depth_multiplier=3, depthwise_initializer="lecun_uniform",
                          bias_initializer="ones", name="depthwise"),
        L.SeparableConv2D(32, 2, depthwise_initializer=inits.RandomNormal(0.1, 0.2),
                          pointwise_initializer="glorot_normal", name="separable"),
        L.BatchNormalization(gamma_initializer=inits.Constant(0.7),
                             moving_variance_initializer=inits.Constant(2.0), name="bn"),
        L.Reshape((4, 32)),
        L.EinsumDense("abc,cd->abd", (4, 48), kernel_initializer="he_normal",
                      bias_axes="d", name="einsum"),
        L.LSTM(64, return_sequences=True, recurrent_initializer=inits.Orthogonal(gain=2.0),
               bias_initializer=inits.RandomUniform(-0.2, 0.2), name="lstm"),
        L.LayerNormalization(axis=[-2, -1], gamma_initializer=inits.RandomNormal(1.0, 0.1),
                             beta_initializer=inits.RandomUniform(-1.0, 1.0), name="ln"),
        L.GRU(32, kernel_initializer=inits.TruncatedNormal(stddev=0.3), return_sequences=True,
              name="gru"),
        L.SimpleRNN(32, kernel_initializer=inits.RandomNormal(stddev=0.3), name="rnn"),
        L.Dense(64, kernel_initializer=inits.RandomNormal(stddev=0.3),
                bias_initializer="ones", name="dense"),
    ], name="explicit")


def test_explicit_initializer_configs_match_keras_in_distribution():
    _compare_with_keras(json.loads(_explicit().to_json()))


def test_explicit_initializer_configs_resolve_to_their_parameters():
    plan = {o.name: o.plan for o in build_plan(_spec(json.loads(_explicit().to_json())))
            .outputs}
    conv = plan["conv/kernel"]
    # VarianceScaling(3, fan_out, uniform) on (3, 3, 4, 16): fan_out 16 * 9, limit sqrt(3s).
    assert conv.init.config["mode"] == "fan_out" and conv.fans.fan_out == 144
    assert conv.init.derived["limit"] == pytest.approx((3 * 3.0 / 144) ** 0.5)
    assert plan["dense/kernel"].init.config == {"name": "random_normal", "mean": 0.0,
                                                "stddev": 0.3}
    # EinsumDense: fans from the einsum axes (32 in, 48 out).
    assert (plan["einsum/kernel"].fans.fan_in, plan["einsum/kernel"].fans.fan_out) == (32, 48)
    lstm_bias = plan["lstm/lstm_cell/bias"]
    assert [(o.start, o.stop, o.value) for o in lstm_bias.overrides] == [(64, 128, 1.0)]


def test_initializer_seeds_are_ignored_and_reported_as_warnings():
    model = keras.Sequential([
        keras.Input((4,)),
        L.Dense(3, kernel_initializer=inits.RandomNormal(stddev=0.3, seed=7), name="d"),
    ])
    model_json = json.loads(model.to_json())
    plan = build_plan(_spec(model_json))
    assert len(plan.warnings) == 1 and "d kernel_initializer" in plan.warnings[0]
    assert "7" in plan.warnings[0] and "ignored" in plan.warnings[0]
    seedless = json.loads(json.dumps(model_json).replace('"seed": 7', '"seed": null'))
    assert build_plan(_spec(seedless)).warnings == []


# ------------------------------------------------------------------------ errors ----


def _error(model_json: dict[str, Any], **extra: Any) -> SpecError:
    with pytest.raises(SpecError) as caught:
        build_plan(_spec(model_json, **extra))
    assert caught.value.status == 422
    return caught.value


def test_unknown_layer_class_is_a_422_naming_the_layer_and_class():
    model_json = _json("dense_einsum_sequential")
    model_json["config"]["layers"][2]["class_name"] = "MyResidualBlock"
    error = _error(model_json)
    assert error.loc == ("keras_model", "config", "layers", 2)
    assert "MyResidualBlock" in error.msg and "'dropout'" in error.msg


def test_unknown_layer_class_in_a_nested_model_is_located_there():
    model_json = _json("nested_models")
    encoder = next(i for i, layer in enumerate(model_json["config"]["layers"])
                   if layer["name"] == "encoder")
    model_json["config"]["layers"][encoder]["config"]["layers"][1]["class_name"] = "Mystery"
    error = _error(model_json)
    assert error.loc == ("keras_model", "config", "layers", encoder, "config", "layers", 1)
    assert "Mystery" in error.msg and "'enc'" in error.msg


def test_unknown_initializer_class_names_the_field():
    model_json = json.loads(keras.Sequential([keras.Input((4,)), L.Dense(3)]).to_json())
    model_json["config"]["layers"][1]["config"]["kernel_initializer"]["class_name"] = "Fancy"
    error = _error(model_json)
    assert error.loc == ("keras_model", "config", "layers", 1, "config", "kernel_initializer",
                         "class_name")


def test_a_shape_that_cannot_be_inferred_is_a_422_naming_the_layer():
    model_json = json.loads(keras.Sequential([L.Dense(4, name="first")], name="s").to_json())
    error = _error(model_json)
    assert error.loc == ("keras_model", "config", "layers", 0)
    assert "'first' (Dense)" in error.msg and "input shape" in error.msg


def test_keras_model_needs_the_keras_convention():
    model_json = json.loads(keras.Sequential([keras.Input((4,)), L.Dense(3)]).to_json())
    assert _error(model_json, convention="torch").loc == ("convention",)


GARBAGE = (None, -1, 0, "x", [], {}, [None], 1.5, True, {"class_name": "X"}, [[1]], 10**30,
           [1, "a"], {"config": 3})


def _slots(value: Any, path: tuple = ()):
    """Every (container, key, path) inside a JSON value."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
        value, list) else ()
    for key, item in items:
        yield value, key, (*path, key)
        yield from _slots(item, (*path, key))


def test_malformed_model_json_is_a_spec_error_never_a_crash():
    """600 seeded mutations of the cases' JSON (a value replaced by garbage or a key
    dropped): each one plans or raises ``SpecError`` (a 4xx), nothing else."""
    rng = random.Random(0)
    for _ in range(600):
        model_json = copy.deepcopy(_json(rng.choice(sorted(MODELS))))
        container, key, path = rng.choice(list(_slots(model_json)))
        if isinstance(container, dict) and rng.random() < 0.2:
            del container[key]
            change = "deleted"
        else:
            container[key] = rng.choice(GARBAGE)
            change = repr(container[key])
        try:
            build_plan(_spec(model_json))
        except SpecError:
            pass
        except Exception as error:  # the point: any other error fails
            pytest.fail(f"{list(path)} {change}: {error!r}")


# ------------------------------------------------------------------------ shapes ----

SHAPE_CASES = [
    (L.Conv2D(4, 3, strides=2, padding="same", dilation_rate=1), (None, 9, 7, 3)),
    (L.Conv2D(4, (3, 2), dilation_rate=2, data_format="channels_first"), (None, 3, 9, 7)),
    (L.Conv1D(4, 3, padding="causal", strides=2), (None, 9, 3)),
    (L.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1), (None, 5, 6, 3)),
    (L.Conv3DTranspose(4, 2, strides=3), (None, 2, 3, 4, 3)),
    (L.MaxPooling2D(3, strides=2, padding="same"), (None, 9, 8, 3)),
    (L.AveragePooling1D(2), (None, 9, 3)),
    (L.GlobalMaxPooling2D(keepdims=True), (None, 4, 4, 3)),
    (L.ZeroPadding2D(((1, 2), (3, 4))), (None, 5, 5, 3)),
    (L.Cropping3D(((1, 0), (0, 2), (1, 1))), (None, 6, 6, 6, 2)),
    (L.UpSampling2D((2, 3), data_format="channels_first"), (None, 3, 4, 5)),
    (L.Reshape((-1, 6)), (None, 4, 9)),
    (L.Permute((3, 1, 2)), (None, 2, 3, 4)),
    (L.RepeatVector(5), (None, 7)),
    (L.Flatten(), (None, 3, 4, 5)),
    (L.SeparableConv2D(5, 3, strides=2), (None, 9, 9, 2)),
    (L.DepthwiseConv2D(3, depth_multiplier=3, padding="same"), (None, 6, 6, 2)),
    (L.EinsumDense("...b,bc->...c", 6), (None, 4, 5)),
]


@pytest.mark.parametrize("layer, shape", SHAPE_CASES, ids=lambda v: getattr(v, "name", ""))
def test_output_shapes_equal_keras_compute_output_shape(layer, shape):
    config = json.loads(json.dumps(keras.layers.serialize(layer)))
    ours = output_shape(config["class_name"], config["config"], Call((shape,)))
    assert ours == tuple(layer.compute_output_shape(shape))


# --------------------------------------------------------------------------- cli ----


def test_cli_init_writes_the_keras_models_weights(tmp_path: Path):
    from safetensors.numpy import load_file

    model = MODELS["recurrent"]()
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(
        {"seed": 1, "convention": "keras", "keras_model": json.loads(model.to_json())}))
    out = tmp_path / "weights.safetensors"
    done = subprocess.run(
        [sys.executable, "-m", "weightinit.service.cli", "init", str(spec_path), "-o", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    tensors = load_file(str(out))
    rebuilt = keras.models.model_from_json(model.to_json())
    assert {w.path: tuple(w.shape) for w in rebuilt.weights} == {
        name: value.shape for name, value in tensors.items()}
    for variable in rebuilt.weights:
        variable.assign(tensors[variable.path])
    bias = rebuilt.get_layer(model.layers[2].name).cell.bias.numpy()
    np.testing.assert_array_equal(bias[16:32], 1.0)  # LSTM's unit_forget_bias
