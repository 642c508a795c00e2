"""The issue's "done means": a mixed model with no initializers, per convention, end to end
through the CLI (``weightinit init spec.json -o f.safetensors`` in a subprocess).

torch: the file loads into the equivalent ``nn.Module`` with ``strict=True`` and every
tensor matches torch's own defaults in distribution. keras: the names, shapes and dtypes
are the Keras 3 weight paths of the equivalent Functional model and every tensor matches
Keras' own defaults. In both, the CLI's file holds exactly the engine's in-process bytes,
so the distribution tests pool in-process generations over seeds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
import torch
from layer_parity import (
    assert_all_same_distribution,
    generate,
    keras_signature,
    keras_stacked,
    ours_stacked,
    seed_count,
    spec_of,
    torch_stacked,
    write_and_load_torch,
)
from live_server import weightinit_command
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file as load_torch
from weightinit.core import build_plan, plan_document

VOCAB, EMBED, CHANNELS, HIDDEN, HEADS, CLASSES = 50, 16, 24, 12, 3, 10


def mixed_layers(convention: str) -> list[dict]:
    """conv, grouped and transposed conv, batch norm, embedding, layer/RMS norm, a 2-layer
    bidirectional LSTM, a GRU, multi-head attention and a linear layer; no initializers."""
    torch_only = convention == "torch"
    return [
        {"type": "embedding", "name": "emb", "num_embeddings": VOCAB, "embedding_dim": EMBED,
         **({"padding_idx": 0} if torch_only else {})},
        {"type": "conv1d", "name": "conv", "in_channels": EMBED, "out_channels": CHANNELS,
         "kernel_size": 3},
        {"type": "conv1d", "name": "gconv", "in_channels": CHANNELS,
         "out_channels": CHANNELS, "kernel_size": 3, "groups": 4},
        # Keras' ConvTranspose has no groups; torch's is grouped here.
        {"type": "conv1d", "name": "tconv", "in_channels": CHANNELS, "out_channels": EMBED,
         "kernel_size": 4, "transposed": True, "groups": 2 if torch_only else 1},
        {"type": "batch_norm", "name": "bn", "num_features": EMBED},
        {"type": "layer_norm", "name": "ln", "normalized_shape": EMBED},
        {"type": "rms_norm", "name": "rms", "normalized_shape": EMBED},
        {"type": "lstm", "name": "lstm", "input_size": EMBED, "hidden_size": HIDDEN,
         "num_layers": 2, "bidirectional": True},
        {"type": "gru", "name": "gru", "input_size": 2 * HIDDEN, "hidden_size": HIDDEN},
        {"type": "multihead_attention", "name": "attn", "embed_dim": HIDDEN,
         "num_heads": HEADS},
        {"type": "linear", "name": "fc", "in_features": HIDDEN, "out_features": CLASSES},
    ]


class TorchMixed(torch.nn.Module):
    """The torch model the spec describes (attribute names = spec layer names)."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.emb = nn.Embedding(VOCAB, EMBED, padding_idx=0)
        self.conv = nn.Conv1d(EMBED, CHANNELS, 3)
        self.gconv = nn.Conv1d(CHANNELS, CHANNELS, 3, groups=4)
        self.tconv = nn.ConvTranspose1d(CHANNELS, EMBED, 4, groups=2)
        self.bn = nn.BatchNorm1d(EMBED)
        self.ln = nn.LayerNorm(EMBED)
        self.rms = nn.RMSNorm(EMBED)
        self.lstm = nn.LSTM(EMBED, HIDDEN, num_layers=2, bidirectional=True)
        self.gru = nn.GRU(2 * HIDDEN, HIDDEN)
        self.attn = nn.MultiheadAttention(HIDDEN, HEADS)
        self.fc = nn.Linear(HIDDEN, CLASSES)


def keras_mixed() -> keras.Model:
    """The Keras model the keras spec describes, as a Functional model."""
    L = keras.layers
    tokens = keras.Input((9,), dtype="int32")
    x = L.Embedding(VOCAB, EMBED, name="emb")(tokens)
    x = L.Conv1D(CHANNELS, 3, padding="same", name="conv")(x)
    x = L.Conv1D(CHANNELS, 3, groups=4, padding="same", name="gconv")(x)
    x = L.Conv1DTranspose(EMBED, 4, padding="same", name="tconv")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.LayerNormalization(name="ln")(x)
    x = L.RMSNormalization(name="rms")(x)
    for k in range(2):
        lstm = L.LSTM(HIDDEN, return_sequences=True, name=f"lstm_{k}")
        x = L.Bidirectional(lstm, name=f"lstm_{k}")(x)
    x = L.GRU(HIDDEN, return_sequences=True, name="gru")(x)
    x = L.MultiHeadAttention(HEADS, HIDDEN // HEADS, name="attn")(x, x)
    outputs = L.Dense(CLASSES, name="fc")(x)
    return keras.Model(tokens, outputs, name="mixed")


def run_cli(spec: dict, directory: Path) -> Path:
    """``weightinit init spec.json -o model.safetensors`` in a subprocess."""
    spec_path, out = directory / "spec.json", directory / "model.safetensors"
    spec_path.write_text(json.dumps(spec))
    subprocess.run(
        [*weightinit_command(), "init", str(spec_path), "-o", str(out), "--quiet"],
        check=True, capture_output=True, timeout=120,
    )
    return out


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory) -> dict[str, Path]:
    """The CLI's file of the mixed model (seed 7), per convention."""
    return {
        convention: run_cli(
            {"seed": 7, "convention": convention, "layers": mixed_layers(convention)},
            tmp_path_factory.mktemp(convention),
        )
        for convention in ("torch", "keras")
    }


@pytest.mark.parametrize("convention", ["torch", "keras"])
def test_cli_file_holds_the_engine_bytes(cli_files, convention):
    expected = generate(spec_of(convention, mixed_layers(convention), seed=7))
    loaded = load_numpy(str(cli_files[convention]))
    assert sorted(loaded) == sorted(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(loaded[name], values, err_msg=name)


def test_torch_mixed_model_loads_strictly(cli_files):
    loaded = load_torch(str(cli_files["torch"]))
    model = TorchMixed()
    expected = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    assert {k: (tuple(v.shape), v.dtype) for k, v in loaded.items()} == expected
    model.load_state_dict(loaded, strict=True)


def test_keras_mixed_model_has_keras_weight_paths(cli_files):
    loaded = load_numpy(str(cli_files["keras"]))
    ours = {name: (tuple(values.shape), str(values.dtype)) for name, values in loaded.items()}
    assert ours == keras_signature(keras_mixed)


def test_torch_mixed_model_matches_torch_defaults_tensor_by_tensor():
    seeds = seed_count(CLASSES)  # fc.bias is the smallest random tensor
    assert_all_same_distribution(
        ours_stacked("torch", mixed_layers("torch"), seeds), torch_stacked(TorchMixed, seeds)
    )


def test_keras_mixed_model_matches_keras_defaults_tensor_by_tensor():
    seeds = seed_count(HIDDEN * CLASSES)  # fc/kernel is the smallest random tensor
    assert_all_same_distribution(
        ours_stacked("keras", mixed_layers("keras"), seeds), keras_stacked(keras_mixed, seeds)
    )


@pytest.mark.parametrize(("convention", "tensors"), [("torch", 16), ("keras", 12)])
def test_plan_groups_the_stacked_lstm_as_one_layer(convention, tensors):
    groups = {g["layer"]: g for g in plan_document(build_plan(spec_of(
        convention, mixed_layers(convention))))["layers"]}
    assert groups["lstm"]["type"] == "lstm"
    assert len(groups["lstm"]["tensors"]) == tensors


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln = torch.nn.LayerNorm(HIDDEN)
        self.attn = torch.nn.MultiheadAttention(HIDDEN, HEADS)
        self.rnn = torch.nn.GRU(HIDDEN, HIDDEN, num_layers=2)


def _blocks() -> list[dict]:
    return [{"type": "repeat", "name": "blocks", "count": 2, "layers": [
        {"type": "layer_norm", "name": "ln", "normalized_shape": HIDDEN},
        {"type": "multihead_attention", "name": "attn", "embed_dim": HIDDEN,
         "num_heads": HEADS},
        {"type": "gru", "name": "rnn", "input_size": HIDDEN, "hidden_size": HIDDEN,
         "num_layers": 2},
    ]}]


def test_repeated_blocks_load_into_a_torch_module_list(tmp_path):
    model = torch.nn.Module()
    model.blocks = torch.nn.ModuleList([_Block(), _Block()])
    model.load_state_dict(write_and_load_torch(spec_of("torch", _blocks()), tmp_path),
                          strict=True)


def test_repeated_blocks_under_keras_prefix_every_weight_path():
    names = {o.name for o in build_plan(spec_of("keras", _blocks())).outputs}
    assert {"blocks_1/ln/gamma", "blocks_1/attn/query/kernel",
            "blocks_1/rnn_0/gru_cell/kernel", "blocks_1/rnn_1/gru_cell/bias"} <= names
    assert all(name.startswith(("blocks_0/", "blocks_1/")) for name in names)
