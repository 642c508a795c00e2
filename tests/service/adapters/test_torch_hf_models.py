"""The torch adapter on real Hugging Face models (tiny configs): ``spec_from_model``
places every tensor without fallback, and ``load_weights`` into a model built inside
``empty_weights`` (parameters on meta) gives the same forward pass as a CPU-built model
loaded with the same weights, ties kept and no meta tensor left."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

import ml_dtypes  # noqa: F401  (bfloat16 for safetensors.numpy)
import pytest
import torch
from hf_tiny_models import CASES, build, inputs, outputs
from safetensors.numpy import load_file
from weightinit.core import Spec, build_plan, write_file

from weightinit.torch import empty_weights, load_weights, spec_from_model, tied_names


def generated(spec: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "weights.safetensors"
    write_file(build_plan(Spec.model_validate(spec)), path)
    return load_file(str(path))


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_tensor_placed_and_the_meta_spec_is_the_cpu_spec(case: str) -> None:
    on_cpu = build(case)
    with torch.device("meta"):
        on_meta = build(case)
    spec = spec_from_model(on_cpu, seed=5)  # fallback="error": raises if one is unplaced
    assert spec == spec_from_model(on_meta, seed=5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_empty_weights_model_loads_and_runs_as_the_cpu_built_one(case: str,
                                                                tmp_path: Path) -> None:
    reference = build(case)
    with empty_weights():
        model = build(case)
    assert all(p.is_meta for p in model.parameters())
    assert not any(b.is_meta for b in model.buffers())  # made by the model's own code
    ties = tied_names(model)
    assert ties == tied_names(reference)
    arrays = generated(spec_from_model(model, seed=11), tmp_path)

    result = load_weights(model, arrays)
    assert result.missing_keys == [] and result.unexpected_keys == []
    load_weights(reference, arrays)

    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    for alias, first in ties.items():
        assert model.get_parameter(alias) is model.get_parameter(first), alias
    for ours, theirs in zip(outputs(model, case), outputs(reference, case), strict=True):
        assert torch.isfinite(ours).all()
        assert torch.equal(ours, theirs)


def test_tied_head_stays_tied_when_trained(tmp_path: Path) -> None:
    """A tie restored after loading is one parameter: a step on it moves both names."""
    with empty_weights():
        model = build("gpt2")
    load_weights(model, generated(spec_from_model(model, seed=2), tmp_path))
    assert model.lm_head.weight is model.transformer.wte.weight
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(**inputs("gpt2"), labels=inputs("gpt2")["input_ids"]).loss.backward()
    optimizer.step()
    assert torch.equal(model.lm_head.weight, model.transformer.wte.weight)


@pytest.mark.parametrize("case", ["llama", "bert", "clip"])
def test_plain_meta_model_is_refused_naming_its_buffers(case: str, tmp_path: Path) -> None:
    """torch.device('meta') leaves computed buffers on meta: loading must say so, not
    run with garbage rotary frequencies or NaN logits."""
    with torch.device("meta"):
        model = build(case)
    arrays = generated(spec_from_model(model, seed=3), tmp_path)
    with pytest.raises(RuntimeError, match=r"(inv_freq|position_ids).*empty_weights"):
        load_weights(model, arrays)
    assert all(p.is_meta for p in model.parameters())  # refused before changing anything


def test_norm_weights_start_as_their_init_says(tmp_path: Path) -> None:
    """Llama's RMSNorm ones, Gemma's (1 + weight) zeros, T5's ones, CLIP's logit_scale
    from the config, ConvNext's layer scale from the config."""
    expected = {("llama", "model.norm.weight"): 1.0, ("gemma", "model.norm.weight"): 0.0,
                ("t5", "encoder.final_layer_norm.weight"): 1.0,
                ("clip", "logit_scale"): 2.6592,
                ("convnext", "convnext.encoder.stages.0.layers.0.layer_scale_parameter"): 0.25}
    for (case, name), value in expected.items():
        with empty_weights():
            model = build(case)
        load_weights(model, generated(spec_from_model(model, seed=4), tmp_path))
        tensor = model.get_parameter(name)
        assert torch.equal(tensor, torch.full_like(tensor, value)), (case, name)


def test_gpt2_conv1d_is_a_transposed_linear_with_its_fans() -> None:
    spec = spec_from_model(build("gpt2"), seed=1)
    layers = {layer["name"]: layer for layer in spec["layers"]}
    c_fc = layers["transformer.h.0.mlp.c_fc.weight"]
    assert c_fc["shape"] == [16, 64] and (c_fc["fan_in"], c_fc["fan_out"]) == (16, 64)
    assert c_fc["init"] == {"name": "normal", "mean": 0.0, "std": 0.02}  # Conv1D.__init__
    assert layers["transformer.h.0.mlp.c_fc.bias"]["init"] == {"name": "zeros"}


def test_a_bfloat16_model_loads_without_copies(tmp_path: Path) -> None:
    """Assigned into a meta model, the arrays become the parameters' storage."""
    with empty_weights():
        model = build("llama").to(torch.bfloat16)
    spec = spec_from_model(model, seed=6)
    assert spec["dtype"] == "bfloat16"
    arrays = generated(spec, tmp_path)
    load_weights(model, arrays)
    weight = model.model.layers[0].mlp.up_proj.weight
    assert weight.dtype == torch.bfloat16
    source = arrays["model.layers.0.mlp.up_proj.weight"]
    assert weight.data_ptr() == source.__array_interface__["data"][0]


def test_float32_model_takes_bfloat16_weights_in_its_own_dtype(tmp_path: Path) -> None:
    with empty_weights():
        model = build("llama")
    arrays = generated(spec_from_model(model, seed=6, dtype="bfloat16"), tmp_path)
    load_weights(model, arrays)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


@pytest.mark.parametrize("case", ["vit", "gpt_neox", "llama_tied"])
def test_a_save_pretrained_file_loads_under_the_modules_names(case: str,
                                                              tmp_path: Path) -> None:
    """transformers 5 renames some families' weights between the file and the module
    (ViT's encoder.layer.0.attention.attention.query is layers.0.attention.q_proj,
    GPT-NeoX's embed_out is lm_head): load_weights takes the file's names."""
    reference = build(case)
    reference.save_pretrained(tmp_path)
    with empty_weights():
        model = build(case)
    assert load_weights(model, tmp_path / "model.safetensors") == ([], [])
    for ours, theirs in zip(outputs(model, case), outputs(reference, case), strict=True):
        assert torch.equal(ours, theirs)


HF_FAMILIES = sorted(case for case in CASES if case != "convnext")  # convnext: no HF rules
needs_hf_source = pytest.mark.skipif(
    find_spec("weightinit.core.hf") is None,
    reason="init='huggingface' needs the huggingface spec source (weightinit.core.hf)",
)


@needs_hf_source
@pytest.mark.parametrize("case", HF_FAMILIES)
def test_huggingface_init_loads_into_the_model(case: str, tmp_path: Path) -> None:
    """init='huggingface' sends the model as the huggingface source (the family's own
    init rules); its save_pretrained names load strictly, renamed families included."""
    with empty_weights():
        model = build(case)
    spec = spec_from_model(model, seed=8, init="huggingface")
    assert spec["huggingface"]["architecture"] == type(model).__name__
    assert load_weights(model, generated(spec, tmp_path)) == ([], [])
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert all(torch.isfinite(t).all() for t in outputs(model, case))


@needs_hf_source
def test_huggingface_init_gives_the_familys_distribution(tmp_path: Path) -> None:
    """Llama's projections: N(0, initializer_range) under the family's rules, torch's
    U(+-1/sqrt(fan_in)) under the module's constructor defaults."""
    with empty_weights():
        model = build("llama")
    family = generated(spec_from_model(model, seed=9, init="huggingface"), tmp_path)
    module = generated(spec_from_model(model, seed=9), tmp_path)
    name = "model.layers.0.mlp.down_proj.weight"  # (16, 32): fan_in 32
    # 512 draws: the sample std's relative standard error is 3 % for a normal, 2 % for
    # a uniform, so 20 % is over 6 standard errors (false alarm < 1e-9); the two
    # distributions' stds (0.02 and 0.102) are five times apart.
    assert abs(family[name].std() / 0.02 - 1) < 0.2
    assert abs(module[name].std() / (1 / 32**0.5 / 3**0.5) - 1) < 0.2
