"""``constructor_inits``: how a custom module's ``__init__`` starts its parameters, read
from its source (torchvision-style tokens and layer scale, ``nn.init`` calls afterwards,
config values, locals), and how ``spec_from_model`` uses it and its fallback."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from weightinit.service.adapters.torch_constructor_inits import constructor_inits

from weightinit.torch import UnsupportedModuleError, spec_from_model


class Tokens(nn.Module):
    """torchvision's VisionTransformer and encoder patterns."""

    def __init__(self, hidden: int, length: int) -> None:
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.pos_embedding = nn.Parameter(torch.empty(1, length, hidden).normal_(std=0.02))
        self.register_parameter("mask", nn.Parameter(torch.full((hidden,), -0.5)))


class LayerScale(nn.Module):
    """torchvision's ConvNeXt block: a scale from an argument the module does not keep."""

    def __init__(self, dim: int, layer_scale: float) -> None:
        super().__init__()
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)


class LaterInit(nn.Module):
    """Parameters made empty, then set by ``nn.init`` or in place, from config and locals."""

    def __init__(self, config: SimpleNamespace, use_gate: bool = True) -> None:
        super().__init__()
        self.config = config
        layers = config.num_layers + 1
        self.proj = nn.Parameter(torch.empty(4, 4))
        nn.init.trunc_normal_(self.proj, std=config.initializer_range)
        self.scale = nn.Parameter(torch.ones(layers) / layers)
        self.temperature = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.gate = nn.Parameter(torch.empty(4)) if use_gate else None
        with torch.no_grad():
            self.gate.data.fill_(config.gate)
        self.uniform = nn.Parameter(torch.empty(3))
        nn.init.uniform_(self.uniform, -0.1, 0.1)
        self.overwritten = nn.Parameter(torch.ones(3))
        self.overwritten.data.copy_(torch.arange(3.0))  # not readable: no longer known
        self.frozen = nn.Parameter(torch.randn(2))
        self.frozen.requires_grad_(False)  # does not change the values


def test_torchvision_style_tokens() -> None:
    assert constructor_inits(Tokens(8, 5)) == {
        "class_token": {"name": "zeros"},
        "pos_embedding": {"name": "normal", "mean": 0.0, "std": 0.02},
        "mask": {"name": "constant", "value": -0.5},
    }


def test_later_initializers_config_values_and_locals() -> None:
    config = SimpleNamespace(num_layers=3, initializer_range=0.05, gate=2.0)
    found = constructor_inits(LaterInit(config))
    assert found["proj"] == {"name": "trunc_normal", "mean": 0.0, "std": 0.05, "a": -2.0,
                             "b": 2.0}
    assert found["scale"] == {"name": "constant", "value": 0.25}
    assert found["temperature"] == {"name": "constant", "value": math.log(1 / 0.07)}
    assert found["gate"] == {"name": "constant", "value": 2.0}
    assert found["uniform"] == {"name": "uniform", "low": -0.1, "high": 0.1}
    assert found["frozen"] == {"name": "normal", "mean": 0.0, "std": 1.0}
    assert "overwritten" not in found


def test_a_factor_the_module_does_not_keep_is_read_from_real_values_only() -> None:
    assert constructor_inits(LayerScale(4, 1e-6)) == {}
    spec = spec_from_model(nn.Sequential(LayerScale(4, 1e-6)), seed=1)
    assert spec["layers"][0]["init"] == {"name": "constant", "value": pytest.approx(1e-6)}
    with torch.device("meta"):
        on_meta = nn.Sequential(LayerScale(4, 1e-6))
    with pytest.raises(UnsupportedModuleError, match=r"0\.layer_scale"):
        spec_from_model(on_meta, seed=1)


class OddNorm(nn.Module):
    """A norm whose weight start the source does not spell out."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(width))
        self.bias = nn.Parameter(torch.empty(width))
        self.reset()

    def reset(self) -> None:
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)


def test_fallback_never_draws_a_norm_weight_and_names_what_it_placed() -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 4), OddNorm(4))
    with pytest.raises(UnsupportedModuleError, match=r"1 \(OddNorm\).*1\.weight, 1\.bias"):
        spec_from_model(model, seed=1)
    with pytest.warns(UserWarning, match=r"1\.weight, 1\.bias"):
        spec = spec_from_model(model, seed=1, fallback="tensor")
    inits = {layer["name"]: layer["init"] for layer in spec["layers"]
             if layer["type"] == "tensor"}
    assert inits == {"1.weight": {"name": "ones"}, "1.bias": {"name": "zeros"}}


def test_rms_and_layer_norm_like_modules_become_norm_layers() -> None:
    class ZeroCentredNorm(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(width))
            self.bias = nn.Parameter(torch.zeros(width))

    spec = spec_from_model(nn.Sequential(ZeroCentredNorm(6)), seed=1)
    assert spec["layers"] == [{"type": "layer_norm", "name": "0", "normalized_shape": [6],
                               "weight_init": {"name": "zeros"}}]
