"""``multihead_attention`` against torch's ``nn.MultiheadAttention`` and Keras'
``MultiHeadAttention`` (EinsumDense kernels with einsum-derived fans)."""

from __future__ import annotations

import keras
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
EMBED, HEADS = 16, 4

TORCH_CASES = {
    "packed": ({}, lambda: nn.MultiheadAttention(EMBED, HEADS)),
    "separate_kv_with_bias_kv": (
        {"kdim": 10, "vdim": 12, "add_bias_kv": True},
        lambda: nn.MultiheadAttention(EMBED, HEADS, kdim=10, vdim=12, add_bias_kv=True),
    ),
    "without_bias": ({"bias": False}, lambda: nn.MultiheadAttention(EMBED, HEADS, bias=False)),
}


def _layer(**extra):
    return {"type": "multihead_attention", "name": "attn", "embed_dim": EMBED,
            "num_heads": HEADS, **extra}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_torch_attention_loads_strictly_with_torch_names_and_dtypes(tmp_path, case):
    extra, factory = TORCH_CASES[case]
    assert_loads_strictly(spec_of("torch", [_layer(**extra)]), holder("attn", factory()),
                          tmp_path)


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_torch_attention_matches_torch_default_distribution(case):
    extra, factory = TORCH_CASES[case]
    seeds = seed_count(min_numel(v.shape for v in factory().state_dict().values()))
    ours = ours_stacked("torch", [_layer(**extra)], seeds)
    assert_all_same_distribution(ours, torch_stacked(lambda: holder("attn", factory()), seeds))


def test_torch_packed_in_proj_uses_fans_of_the_packed_matrix():
    tensors = {t["name"]: t for t in plan_document(build_plan(spec_of("torch", [_layer()])))[
        "tensors"]}
    in_proj = tensors["attn.in_proj_weight"]
    assert (in_proj["fan_in"], in_proj["fan_out"]) == (EMBED, 3 * EMBED)
    assert in_proj["bound"] == pytest.approx((6 / (4 * EMBED)) ** 0.5)
    assert tensors["attn.out_proj.weight"]["initializer"]["name"] == "torch_default"


def _functional(kdim=EMBED, vdim=EMBED, **options):
    def build():
        query = keras.Input((5, EMBED))
        value = keras.Input((7, vdim))
        key = keras.Input((7, kdim))
        attention = keras.layers.MultiHeadAttention(name="attn", **options)
        output = attention(query, value, key=key)
        return keras.Model([query, value, key], output, name="model")

    return build


KERAS_CASES = {
    "self": ({}, _functional(num_heads=HEADS, key_dim=EMBED // HEADS)),
    "cross_kv_dims": (
        {"kdim": 10, "vdim": 12}, _functional(10, 12, num_heads=HEADS, key_dim=EMBED // HEADS)
    ),
    "head_sizes_without_bias": (
        {"key_dim": 8, "value_dim": 6, "bias": False},
        _functional(num_heads=HEADS, key_dim=8, value_dim=6, use_bias=False),
    ),
}


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_keras_attention_has_keras_weight_paths(case):
    extra, build = KERAS_CASES[case]
    assert our_signature(spec_of("keras", [_layer(**extra)])) == keras_signature(build)


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_keras_attention_matches_keras_default_distribution(case):
    extra, build = KERAS_CASES[case]
    seeds = seed_count(10 * HEADS * (EMBED // HEADS))  # smallest random kernel
    assert_all_same_distribution(
        ours_stacked("keras", [_layer(**extra)], seeds), keras_stacked(build, seeds)
    )


def test_keras_einsum_kernels_use_input_and_output_axes_as_fans():
    tensors = {t["name"]: t for t in plan_document(build_plan(spec_of("keras", [_layer(
        kdim=10, key_dim=8, value_dim=6)])))["tensors"]}
    fans = {name: (t["fan_in"], t["fan_out"]) for name, t in tensors.items()
            if name.endswith("kernel")}
    assert fans == {
        "attn/query/kernel": (EMBED, HEADS * 8),
        "attn/key/kernel": (10, HEADS * 8),
        "attn/value/kernel": (EMBED, HEADS * 6),
        "attn/attention_output/kernel": (HEADS * 6, EMBED),
    }


def test_attention_overrides_apply_per_role():
    layer = _layer(
        add_bias_kv=True, weight_init={"name": "normal", "std": 0.02}, bias_init="ones",
        out_weight_init="zeros", out_bias_init={"name": "constant", "value": 0.5},
        bias_kv_init="zeros",
    )
    tensors = plan_document(build_plan(spec_of("torch", [layer])))["tensors"]
    assert {t["name"]: t["initializer"]["name"] for t in tensors} == {
        "attn.in_proj_weight": "normal", "attn.in_proj_bias": "ones", "attn.bias_k": "zeros",
        "attn.bias_v": "zeros", "attn.out_proj.weight": "zeros",
        "attn.out_proj.bias": "constant",
    }


@pytest.mark.parametrize(
    ("convention", "extra", "field"),
    [
        ("torch", {"num_heads": 5}, "num_heads"),
        ("torch", {"key_dim": 8}, "key_dim"),
        ("keras", {"add_bias_kv": True}, "add_bias_kv"),
        ("torch", {"bias_kv_init": "zeros"}, "bias_kv_init"),
    ],
)
def test_options_the_framework_lacks_are_spec_errors(convention, extra, field):
    with pytest.raises(SpecError) as caught:
        build_plan(spec_of(convention, [_layer(**extra)]))
    assert caught.value.loc[-1] == field


def test_keras_head_size_need_not_divide_embed_dim():
    plan = build_plan(spec_of("keras", [_layer(num_heads=5, key_dim=3)]))
    assert {o.name: o.shape for o in plan.outputs}["attn/query/kernel"] == (EMBED, 5, 3)
