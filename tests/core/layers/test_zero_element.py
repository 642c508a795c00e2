"""Zero-element tensors where torch allows them: the same state dict, nothing generated.

torch builds ``nn.Linear(0, 5)``, a conv with no channels or an empty embedding without
complaint; its initializers draw nothing for an empty tensor, compute the fans of the
shape as usual (so ``nn.Linear(0, 5)``'s bias has bound 0: zeros), and
``kaiming_uniform_`` warns that the call is a no-op. Each case checks our file against
the real module: names, shapes, strict loading, the values in distribution (the helpers
of ``layer_parity``; ALPHA and its justification there), and the warnings.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
import torch
from layer_parity import (
    assert_all_same_distribution,
    assert_loads_strictly,
    holder,
    ours_stacked,
    seed_count,
    spec_of,
    torch_stacked,
)
from weightinit.core import build_plan

nn = torch.nn

CASES: dict[str, tuple[dict[str, Any], Any]] = {
    "linear_no_inputs": ({"type": "linear", "in_features": 0, "out_features": 5},
                         lambda: nn.Linear(0, 5)),
    "linear_no_outputs": ({"type": "linear", "in_features": 5, "out_features": 0},
                          lambda: nn.Linear(5, 0)),
    "conv_no_in_channels": ({"type": "conv2d", "in_channels": 0, "out_channels": 4,
                             "kernel_size": 3}, lambda: nn.Conv2d(0, 4, 3)),
    "conv_no_out_channels": ({"type": "conv2d", "in_channels": 4, "out_channels": 0,
                              "kernel_size": 3}, lambda: nn.Conv2d(4, 0, 3)),
    "conv_empty_kernel": ({"type": "conv2d", "in_channels": 4, "out_channels": 4,
                           "kernel_size": 0}, lambda: nn.Conv2d(4, 4, 0)),
    # Transposed: the weight (0, 4, 3) is empty, yet fan_in = 4 * 3, so the bias is drawn.
    "conv_transpose_no_in_channels": ({"type": "conv1d", "in_channels": 0, "out_channels": 4,
                                       "kernel_size": 3, "transposed": True},
                                      lambda: nn.ConvTranspose1d(0, 4, 3)),
    "embedding_no_rows": ({"type": "embedding", "num_embeddings": 0, "embedding_dim": 4},
                          lambda: nn.Embedding(0, 4)),
    "embedding_no_columns": ({"type": "embedding", "num_embeddings": 4, "embedding_dim": 0},
                             lambda: nn.Embedding(4, 0)),
    "layer_norm_empty": ({"type": "layer_norm", "normalized_shape": 0},
                         lambda: nn.LayerNorm(0)),
    "rms_norm_empty": ({"type": "rms_norm", "normalized_shape": [3, 0]},
                       lambda: nn.RMSNorm([3, 0])),
    "batch_norm_empty": ({"type": "batch_norm", "num_features": 0},
                         lambda: nn.BatchNorm1d(0)),
    "group_norm_empty": ({"type": "group_norm", "num_groups": 1, "num_channels": 0},
                         lambda: nn.GroupNorm(1, 0)),
    "attention_empty_keys": ({"type": "multihead_attention", "embed_dim": 4, "num_heads": 1,
                              "kdim": 0, "vdim": 4},
                             lambda: nn.MultiheadAttention(4, 1, kdim=0, vdim=4)),
}


def _layer(case: str) -> dict[str, Any]:
    return {**CASES[case][0], "name": "m"}


def _torch_module(case: str) -> tuple[Any, list[str]]:
    """The module under ``m`` and the warnings torch gave while building it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = holder("m", CASES[case][1]())
    return module, [str(w.message) for w in caught]


@pytest.mark.parametrize("case", list(CASES))
def test_empty_tensors_load_strictly_into_the_torch_module(case, tmp_path):
    module, _ = _torch_module(case)
    assert_loads_strictly(spec_of("torch", [_layer(case)]), module, tmp_path)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
@pytest.mark.parametrize("case", list(CASES))
def test_values_match_torch_in_distribution(case):
    module, _ = _torch_module(case)
    numel = max([math.prod(v.shape) for v in module.state_dict().values()] + [1])
    seeds = seed_count(numel)
    ours = ours_stacked("torch", [_layer(case)], seeds)
    theirs = torch_stacked(lambda: holder("m", CASES[case][1]()), seeds)
    assert_all_same_distribution(ours, theirs)


@pytest.mark.parametrize("case", list(CASES))
def test_torch_warnings_become_plan_warnings(case):
    _, theirs = _torch_module(case)
    plan = build_plan(spec_of("torch", [_layer(case)]))
    for message in theirs:
        assert any(message in ours for ours in plan.warnings), (message, plan.warnings)
    assert len(plan.warnings) == len(set(theirs))


def test_an_empty_tensor_takes_any_initializer_and_writes_no_bytes():
    spec = spec_of("torch", [
        {"type": "tensor", "name": name, "shape": [0, 3], "init": init}
        for name, init in [("eye", "eye"), ("xavier", "xavier_uniform"),
                           ("orthogonal", "orthogonal"), ("sparse", {"name": "sparse",
                                                                    "sparsity": 0.5})]
    ])
    plan = build_plan(spec)
    assert plan.total_bytes == 0
    assert [output.shape for output in plan.outputs] == [(0, 3)] * 4


def test_sizes_below_zero_and_recurrent_zero_sizes_stay_refused():
    from pydantic import ValidationError

    for layer in ({"type": "linear", "name": "m", "in_features": -1, "out_features": 3},
                  {"type": "lstm", "name": "m", "input_size": 0, "hidden_size": 3},
                  {"type": "multihead_attention", "name": "m", "embed_dim": 0,
                   "num_heads": 1}):
        with pytest.raises(ValidationError):
            spec_of("torch", [layer])


def test_a_padding_row_of_an_empty_embedding_plans_with_zero_statistics():
    """``embedding_dim`` 0 with a ``padding_idx``: the row to zero has no element, so the
    expectations stay the initializer's (the override statistics divided by zero)."""
    from weightinit.core import Spec

    spec = Spec.model_validate({"seed": 1, "layers": [
        {"type": "embedding", "name": "e", "num_embeddings": 4, "embedding_dim": 0,
         "padding_idx": 1}]})
    (output,) = build_plan(spec).outputs
    assert output.plan.shape == (4, 0)
    assert math.isfinite(output.plan.init.expected_variance)
