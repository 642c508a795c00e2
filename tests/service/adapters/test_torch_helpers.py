"""``spec_from_module`` and ``load_into``: torch modules to specs and weights back, with
the weights made in-process by the engine (no server needed)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import ml_dtypes  # noqa: F401  (bfloat16 for safetensors.numpy)
import pytest
import torch
from safetensors.numpy import load_file
from torch import nn
from weightinit.core import Spec, build_plan, write_file
from weightinit.service.adapters.torch_helpers import UnsupportedModuleError, spec_from_model
from weightinit.service.adapters.torch_loading import load_weights
from weightinit.service.client.client import DownloadedFile


class Everything(nn.Module):
    """One of every module type the spec language has, nested, plus a tied head."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 8, padding_idx=0)
        self.bag = nn.EmbeddingBag(20, 8)
        self.convs = nn.ModuleList([
            nn.Conv1d(8, 16, 3), nn.Conv2d(4, 8, (3, 5), groups=2, bias=False),
            nn.Conv3d(2, 4, 3), nn.ConvTranspose1d(8, 6, 3, groups=2),
            nn.ConvTranspose2d(4, 8, 3), nn.ConvTranspose3d(2, 4, 2),
        ])
        self.norms = nn.ModuleDict({
            "ln": nn.LayerNorm([8]), "ln_nobias": nn.LayerNorm(8, bias=False),
            "ln_plain": nn.LayerNorm(8, elementwise_affine=False), "rms": nn.RMSNorm(8),
            "bn1": nn.BatchNorm1d(8), "bn2": nn.BatchNorm2d(8, affine=False),
            "bn3": nn.BatchNorm3d(8, track_running_stats=False),
            "inorm": nn.InstanceNorm2d(8, affine=True, track_running_stats=True),
            "gn": nn.GroupNorm(2, 8),
        })
        self.lstm = nn.LSTM(8, 16, num_layers=2, bidirectional=True, proj_size=4)
        self.gru = nn.GRU(8, 16, bias=False)
        self.mha = nn.MultiheadAttention(8, 2)
        self.mha_kv = nn.MultiheadAttention(8, 2, kdim=6, vdim=5, add_bias_kv=True,
                                            bias=False)
        self.block = nn.TransformerEncoderLayer(8, 2, 16)
        self.act = nn.PReLU(8, init=0.3)
        self.low = nn.Linear(8, 4).to(torch.bfloat16)
        self.head = nn.Linear(8, 50, bias=False)
        self.head.weight = self.emb.weight


class Scaled(nn.Module):
    """A module with a parameter of its own whose start its source does not spell out."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 8))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.inner = nn.Linear(8, 8)


def weights_for(spec: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "weights.safetensors"
    write_file(build_plan(Spec.model_validate(spec)), path)
    return path


def test_spec_has_every_state_dict_key_once(tmp_path: Path) -> None:
    model = Everything()
    spec = spec_from_model(model, seed=7)
    names = {o.name for o in build_plan(Spec.model_validate(spec)).outputs}
    assert names == set(model.state_dict()) - {"head.weight"}  # tied: generated once
    assert {layer["type"] for layer in spec["layers"]} >= {
        "embedding", "conv1d", "conv2d", "conv3d", "layer_norm", "rms_norm", "batch_norm",
        "group_norm", "lstm", "gru", "multihead_attention", "linear"}


def test_meta_device_module_gives_the_same_spec() -> None:
    with torch.device("meta"):
        on_meta = Everything()
    assert spec_from_model(on_meta, seed=7) == spec_from_model(Everything(), seed=7)


def test_load_into_is_strict_and_keeps_ties(tmp_path: Path) -> None:
    model = Everything()
    path = weights_for(spec_from_model(model, seed=7), tmp_path)
    result = load_weights(model, path)
    assert not result.missing_keys and not result.unexpected_keys
    assert model.head.weight is model.emb.weight
    expected = load_file(str(path))
    assert model.convs[0].weight.detach().numpy().tobytes() == expected[
        "convs.0.weight"].tobytes()
    assert torch.equal(model.emb.weight[0], torch.zeros(8))  # padding row
    assert torch.equal(model.act.weight, torch.full((8,), 0.3))  # PReLU's own constant


def test_load_into_a_meta_module_assigns_and_reties(tmp_path: Path) -> None:
    with torch.device("meta"):
        model = Everything()
    arrays = load_file(str(weights_for(spec_from_model(model, seed=7), tmp_path)))
    load_weights(model, arrays)  # numpy arrays, bfloat16 from ml_dtypes included
    assert not any(t.is_meta for t in model.state_dict().values())
    assert model.head.weight is model.emb.weight
    assert model.low.weight.dtype == torch.bfloat16
    assert model.low.weight.view(torch.int16).numpy().tobytes() == arrays[
        "low.weight"].tobytes()


def test_load_into_refuses_a_missing_key(tmp_path: Path) -> None:
    model = Everything()
    arrays = load_file(str(weights_for(spec_from_model(model, seed=7), tmp_path)))
    del arrays["gru.weight_ih_l0"]
    with pytest.raises(RuntimeError, match=r"gru\.weight_ih_l0"):
        load_weights(model, arrays)


def test_module_types_get_torchs_own_bound(tmp_path: Path) -> None:
    model = Everything()
    load_weights(model, weights_for(spec_from_model(model, seed=3), tmp_path))
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear | nn.modules.conv._ConvNd) or name == "head":
            continue
        weight = module.weight.detach().float()
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) as reset_parameters
        largest = weight.abs().max().item()
        assert largest <= bound * (1 + 2**-7), name  # bfloat16 rounding can reach it
        if weight.numel() >= 200:
            # n uniform draws all below 0.9 bound: probability 0.9**n < 1e-9 for n >= 200.
            assert largest >= 0.9 * bound, name


def test_dtype_follows_the_module_unless_given() -> None:
    spec = spec_from_model(Everything(), seed=1)
    assert spec["dtype"] == "float32"
    low = next(layer for layer in spec["layers"] if layer["name"] == "low")
    assert low["dtype"] == "bfloat16"
    assert spec_from_model(Everything(), seed=1, dtype="float16")["dtype"] == "float16"


def test_module_without_layer_type_is_named_and_tensor_fallback_offered() -> None:
    model = nn.Sequential(Scaled())
    with pytest.raises(UnsupportedModuleError) as caught:
        spec_from_model(model, seed=1)
    message = str(caught.value)
    assert "0 (Scaled)" in message and "0.scale" in message and "0.step" in message
    assert "fallback='tensor'" in message
    assert caught.value.modules == {"0": "Scaled"}


def test_tensor_fallback_loads_strictly(tmp_path: Path) -> None:
    model = nn.Sequential(Scaled())
    with pytest.warns(UserWarning, match=r"fallback: 0\.scale, 0\.step"):
        spec = spec_from_model(model, seed=1, fallback="tensor")
    fallback = {layer["name"]: layer for layer in spec["layers"] if layer["type"] == "tensor"}
    assert fallback["0.scale"]["init"] == {"name": "normal", "mean": 0.0, "std": 0.02}
    assert fallback["0.step"]["init"] == {"name": "zeros"}  # a buffer is not drawn
    load_weights(model, weights_for(spec, tmp_path))

    with pytest.warns(UserWarning):
        ones = spec_from_model(model, seed=1, fallback="tensor",
                               fallback_init=lambda name, tensor: {"name": "ones"})
    assert {layer["name"]: layer["init"] for layer in ones["layers"]
            if layer["type"] == "tensor"}["0.scale"] == {"name": "ones"}


def test_root_layer_and_lazy_modules_are_refused_with_advice() -> None:
    with pytest.raises(ValueError, match="wrap it"):
        spec_from_model(nn.Linear(3, 4), seed=1)
    with pytest.raises(ValueError, match="forward pass"):
        spec_from_model(nn.Sequential(nn.LazyLinear(3)), seed=1)


def test_load_weights_refuses_before_changing_anything(tmp_path: Path) -> None:
    model = Everything()
    before = model.convs[0].weight.detach().clone()
    arrays = load_file(str(weights_for(spec_from_model(model, seed=7), tmp_path)))
    arrays["emb.weight"] = arrays["emb.weight"][:10]
    with pytest.raises(RuntimeError, match=r"emb\.weight: tensor \(10, 8\), model \(50, 8\)"):
        load_weights(model, arrays)
    arrays.pop("emb.weight")
    arrays["extra"] = arrays["low.bias"]
    with pytest.raises(RuntimeError, match=r"missing keys.*emb\.weight.*unexpected keys.*extra"):
        load_weights(model, arrays)
    assert torch.equal(model.convs[0].weight, before)


def test_load_weights_non_strict_reports_what_it_did_not_match(tmp_path: Path) -> None:
    model = Everything()
    arrays = load_file(str(weights_for(spec_from_model(model, seed=7), tmp_path)))
    arrays.pop("gru.weight_hh_l0")
    arrays["extra"] = arrays["low.bias"]
    result = load_weights(model, arrays, strict=False)
    assert result.missing_keys == ["gru.weight_hh_l0"]
    assert result.unexpected_keys == ["extra"]
    assert torch.equal(model.low.bias, torch.from_numpy(arrays["low.bias"].view("uint16")
                                                        ).view(torch.bfloat16))


def test_load_weights_takes_a_clients_file_record(tmp_path: Path) -> None:
    model = Everything()
    path = weights_for(spec_from_model(model, seed=7), tmp_path)
    record = {"path": str(path), "bytes": path.stat().st_size, "file_sha256": None}
    assert load_weights(model, record) == ([], [])
    assert load_weights(model, DownloadedFile(path, path.stat().st_size, None)) == ([], [])
    with pytest.raises(TypeError, match="safetensors path"):
        load_weights(model, 42)


def test_deprecated_names_warn_and_still_work() -> None:
    from weightinit.torch import load_into, spec_from_module

    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.warns(DeprecationWarning, match="spec_from_model"):
        spec = spec_from_module(model, seed=1)
    assert spec == spec_from_model(model, seed=1)
    state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    with pytest.warns(DeprecationWarning, match="load_weights"):
        result = load_into(model, state)
    assert result.missing_keys == [] and result.unexpected_keys == []
