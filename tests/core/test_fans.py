"""Fan rules and layer layouts against the real frameworks.

torch: ``torch.nn.init._calculate_fan_in_and_fan_out`` on the weights of real
``nn.Linear``/``nn.ConvNd``/``nn.ConvTransposeNd`` modules (grouped and transposed
included). Keras: ``compute_fans`` on the kernels of real, built ``Dense``/``ConvND``/
``ConvNDTranspose`` layers. The plan's shapes must be the framework's shapes, and its
fans the framework's fans of those shapes.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ["KERAS_BACKEND"] = "torch"  # chosen before keras is imported
import keras
from engine_helpers import spec_of
from keras.src.initializers.random_initializers import compute_fans
from weightinit.core import build_plan
from weightinit.core.fans import KERAS_LAYOUT, TORCH_LAYOUT, Fans, keras_fans, torch_fans

torch_fan_rule = torch.nn.init._calculate_fan_in_and_fan_out


@pytest.mark.parametrize("shape", [(5, 3), (8, 4, 3), (8, 4, 3, 2), (8, 4, 2, 3, 3), (1, 1)])
def test_torch_fans_equal_torch_rule(shape):
    assert torch_fans(shape) == Fans(*torch_fan_rule(torch.empty(shape)))


@pytest.mark.parametrize("shape", [(), (7,)])
def test_torch_fans_undefined_below_two_dimensions(shape):
    with pytest.raises(ValueError):
        torch_fan_rule(torch.empty(shape))
    assert torch_fans(shape) == Fans(None, None)


@pytest.mark.parametrize("shape", [(), (7,), (5, 3), (3, 4, 8), (3, 3, 4, 8), (2, 3, 3, 4, 8)])
def test_keras_fans_equal_keras_compute_fans(shape):
    assert keras_fans(shape) == Fans(*compute_fans(shape))


# ---------------------------------------------------------------- torch layers ----

TORCH_CONVS = [
    # (spec layer fields, the torch module)
    ({"type": "conv1d", "in_channels": 4, "out_channels": 6, "kernel_size": 5},
     lambda: torch.nn.Conv1d(4, 6, 5)),
    ({"type": "conv2d", "in_channels": 6, "out_channels": 9, "kernel_size": [3, 2], "groups": 3},
     lambda: torch.nn.Conv2d(6, 9, (3, 2), groups=3)),
    ({"type": "conv3d", "in_channels": 4, "out_channels": 8, "kernel_size": 3, "groups": 2},
     lambda: torch.nn.Conv3d(4, 8, 3, groups=2)),
    ({"type": "conv2d", "in_channels": 6, "out_channels": 4, "kernel_size": 3,
      "transposed": True}, lambda: torch.nn.ConvTranspose2d(6, 4, 3)),
    ({"type": "conv1d", "in_channels": 6, "out_channels": 9, "kernel_size": 4, "groups": 3,
      "transposed": True}, lambda: torch.nn.ConvTranspose1d(6, 9, 4, groups=3)),
    ({"type": "conv3d", "in_channels": 4, "out_channels": 2, "kernel_size": [1, 2, 3],
      "groups": 2, "transposed": True, "bias": False},
     lambda: torch.nn.ConvTranspose3d(4, 2, (1, 2, 3), groups=2, bias=False)),
]


@pytest.mark.parametrize(("fields", "module"), TORCH_CONVS,
                         ids=[f"{f['type']}-g{f.get('groups', 1)}-t{f.get('transposed', False)}"
                              for f, _ in TORCH_CONVS])
def test_torch_conv_shapes_and_fans_equal_the_module(fields, module):
    module = module()
    plan = build_plan(spec_of([{"name": "c", **fields}]))
    by_name = {output.name: output.plan for output in plan.outputs}
    weight = by_name["c.weight"]
    assert weight.shape == tuple(module.weight.shape)
    assert weight.fans == Fans(*torch_fan_rule(module.weight))
    if module.bias is None:
        assert "c.bias" not in by_name
        return
    # torch's reset_parameters bounds the bias by 1/sqrt(fan_in of the weight).
    bias = by_name["c.bias"]
    assert bias.shape == tuple(module.bias.shape)
    assert bias.fans == weight.fans
    assert bias.init.derived["bound"] == pytest.approx(torch_fan_rule(module.weight)[0] ** -0.5)


def test_torch_linear_shape_and_fans_equal_the_module():
    module = torch.nn.Linear(7, 3)
    plan = build_plan(spec_of([{"type": "linear", "name": "fc", "in_features": 7,
                                "out_features": 3}]))
    weight, bias = (output.plan for output in plan.outputs)
    assert weight.shape == tuple(module.weight.shape) == TORCH_LAYOUT.dense_shape(7, 3)
    assert weight.fans == Fans(*torch_fan_rule(module.weight))
    assert bias.shape == tuple(module.bias.shape)
    # nn.Linear.reset_parameters bounds the bias by 1/sqrt(fan_in of the weight), too.
    assert bias.fans == weight.fans
    assert bias.init.derived["bound"] == pytest.approx(torch_fan_rule(module.weight)[0] ** -0.5)


# ---------------------------------------------------------------- keras layers ----

KERAS_CONVS = [
    ({"type": "conv1d", "in_channels": 4, "out_channels": 6, "kernel_size": 5},
     lambda: keras.layers.Conv1D(6, 5), (None, 20, 4)),
    ({"type": "conv2d", "in_channels": 6, "out_channels": 9, "kernel_size": [3, 2], "groups": 3},
     lambda: keras.layers.Conv2D(9, (3, 2), groups=3), (None, 10, 10, 6)),
    ({"type": "conv3d", "in_channels": 4, "out_channels": 8, "kernel_size": 3, "groups": 2},
     lambda: keras.layers.Conv3D(8, 3, groups=2), (None, 6, 6, 6, 4)),
    ({"type": "conv2d", "in_channels": 6, "out_channels": 4, "kernel_size": 3,
      "transposed": True}, lambda: keras.layers.Conv2DTranspose(4, 3), (None, 10, 10, 6)),
    ({"type": "conv1d", "in_channels": 5, "out_channels": 3, "kernel_size": 4,
      "transposed": True, "bias": False},
     lambda: keras.layers.Conv1DTranspose(3, 4, use_bias=False), (None, 10, 5)),
    ({"type": "conv3d", "in_channels": 2, "out_channels": 3, "kernel_size": [1, 2, 3],
      "transposed": True},
     lambda: keras.layers.Conv3DTranspose(3, (1, 2, 3)), (None, 4, 4, 4, 2)),
]


@pytest.mark.parametrize(("fields", "layer", "input_shape"), KERAS_CONVS,
                         ids=[f"{f['type']}-g{f.get('groups', 1)}-t{f.get('transposed', False)}"
                              for f, _, _ in KERAS_CONVS])
def test_keras_conv_shapes_and_fans_equal_the_layer(fields, layer, input_shape):
    layer = layer()
    layer.build(input_shape)
    plan = build_plan(spec_of([{"name": "c", **fields}], convention="keras"))
    by_name = {output.name: output.plan for output in plan.outputs}
    kernel = by_name["c/kernel"]
    assert kernel.shape == tuple(layer.kernel.shape)
    assert kernel.fans == Fans(*compute_fans(tuple(layer.kernel.shape)))
    assert kernel.init.config["name"] == "glorot_uniform"  # Keras' default kernel init
    if layer.use_bias:
        assert by_name["c/bias"].shape == tuple(layer.bias.shape)
        assert by_name["c/bias"].init.config["name"] == "zeros"
    else:
        assert "c/bias" not in by_name


def test_keras_dense_shape_and_fans_equal_the_layer():
    layer = keras.layers.Dense(3)
    layer.build((None, 7))
    plan = build_plan(spec_of([{"type": "linear", "name": "d", "in_features": 7,
                                "out_features": 3}], convention="keras"))
    kernel, bias = (output.plan for output in plan.outputs)
    assert kernel.name == "d/kernel" and bias.name == "d/bias"
    assert kernel.shape == tuple(layer.kernel.shape) == KERAS_LAYOUT.dense_shape(7, 3)
    assert kernel.fans == Fans(*compute_fans(tuple(layer.kernel.shape)))
    assert bias.shape == tuple(layer.bias.shape)


def test_conv_shape_table():
    """The layouts written out: torch (out, in/g, *k), transposed (in, out/g, *k);
    keras (*k, in/g, out), transposed (*k, out, in)."""
    assert TORCH_LAYOUT.conv_shape(6, 9, (3, 2), 3, False) == (9, 2, 3, 2)
    assert TORCH_LAYOUT.conv_shape(6, 9, (3, 2), 3, True) == (6, 3, 3, 2)
    assert KERAS_LAYOUT.conv_shape(6, 9, (3, 2), 3, False) == (3, 2, 2, 9)
    assert KERAS_LAYOUT.conv_shape(6, 9, (3, 2), 1, True) == (3, 2, 9, 6)


def test_tensor_layer_explicit_fans_override_the_shape_rule():
    plan = build_plan(spec_of([{"type": "tensor", "name": "w", "shape": [10, 4],
                                "init": "glorot_uniform", "fan_in": 100, "fan_out": 50}]))
    resolved = plan.outputs[0].plan
    assert resolved.fans == Fans(100, 50)
    assert resolved.init.derived["limit"] == pytest.approx((6.0 / 150) ** 0.5, rel=1e-12)
