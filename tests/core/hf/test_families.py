"""core.hf.families and the refusals of core.hf.tracing: unsupported families, remote
code, hostile sizes (refused before anything is built), bad architectures."""

from __future__ import annotations

import sys
import tracemalloc
from typing import Any

import pytest
from hf_variants import VARIANTS
from pydantic import ValidationError
from weightinit.core import LimitError, Spec, SpecError, build_plan
from weightinit.core.hf import SUPPORTED_FAMILIES
from weightinit.core.hf.errors import ExtraMissing


def _spec(config: dict[str, Any], **source: Any) -> Spec:
    return Spec.model_validate({"seed": 1, "huggingface": {"config": config, **source}})


def test_every_supported_family_has_a_parity_variant() -> None:
    assert {config["model_type"] for config in VARIANTS.values()} == set(SUPPORTED_FAMILIES)


def test_an_unsupported_family_is_refused_naming_the_supported_ones_and_layers() -> None:
    with pytest.raises(SpecError) as error:
        build_plan(_spec({"model_type": "bloom", "hidden_size": 8}))
    assert error.value.loc == ("huggingface", "config", "model_type")
    assert "llama" in error.value.msg and "whisper" in error.value.msg
    assert "'layers'" in error.value.msg


def test_a_config_without_model_type_is_refused() -> None:
    with pytest.raises(SpecError) as error:
        build_plan(_spec({"hidden_size": 8}))
    assert error.value.loc == ("huggingface", "config", "model_type")


@pytest.mark.parametrize("where", ["top", "nested"])
def test_remote_code_is_refused(where: str) -> None:
    auto_map = {"AutoModel": "evil.Model"}
    config = dict(VARIANTS["clip"])
    if where == "top":
        config["auto_map"] = auto_map
        loc = ("huggingface", "config", "auto_map")
    else:
        config["text_config"] = {**config["text_config"], "auto_map": auto_map}
        loc = ("huggingface", "config", "text_config", "auto_map")
    with pytest.raises(SpecError) as error:
        build_plan(_spec(config))
    assert error.value.loc == loc and "remote code" in error.value.msg


def test_quantized_configs_are_refused() -> None:
    config = {**VARIANTS["llama-gqa-untied"], "quantization_config": {"quant_method": "bnb"}}
    with pytest.raises(SpecError, match="quantized"):
        build_plan(_spec(config))


HOSTILE = {
    "layers": ("llama-gqa-untied", {"num_hidden_layers": 10**9}),
    "vocab": ("gpt2-tied", {"vocab_size": 10**12}),
    "hidden": ("bert-mlm", {"hidden_size": 10**9}),
    "t5 decoder layers": ("t5-tied", {"num_decoder_layers": 10**8}),
    "whisper positions": ("whisper", {"max_source_positions": 10**9}),
    "vit patches": ("vit-classifier", {"image_size": 10**6, "patch_size": 1}),
    "clip tower": ("clip", {"vision_config": {"hidden_size": 10**9, "num_attention_heads": 1}}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_sizes_are_refused_before_building_anything(case: str) -> None:
    """Refused from the config's numbers alone: no model class is constructed (none is
    even imported for the family) and the check allocates almost nothing."""
    variant, change = HOSTILE[case]
    config = {**VARIANTS[variant], **change}
    modeling = f"transformers.models.{config['model_type']}.modeling_{config['model_type']}"
    was_imported = modeling in sys.modules
    tracemalloc.start()
    try:
        with pytest.raises(LimitError) as error:
            build_plan(_spec(config))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.value.status == 413
    assert error.value.loc[:2] == ("huggingface", "config")
    assert peak < 16 << 20
    assert (modeling in sys.modules) == was_imported


def test_absurd_integers_are_refused_by_name() -> None:
    config = {**VARIANTS["llama-gqa-untied"], "max_position_embeddings": 2**40}
    with pytest.raises(LimitError) as error:
        build_plan(_spec(config))
    assert error.value.loc == ("huggingface", "config", "max_position_embeddings")


def test_a_config_transformers_refuses_is_a_422_on_the_config() -> None:
    config = {**VARIANTS["llama-gqa-untied"], "num_attention_heads": 5}  # 32 % 5 != 0
    with pytest.raises(SpecError) as error:
        build_plan(_spec(config))
    assert error.value.status == 422 and error.value.loc[0] == "huggingface"


def test_an_architecture_of_another_family_is_refused_with_the_choices() -> None:
    with pytest.raises(SpecError) as error:
        build_plan(_spec(VARIANTS["llama-gqa-untied"], architecture="BertModel"))
    assert error.value.loc == ("huggingface", "architecture")
    assert "LlamaForCausalLM" in error.value.msg


def test_architecture_names_are_plain_identifiers() -> None:
    with pytest.raises(ValidationError):
        _spec(VARIANTS["llama-gqa-untied"], architecture="os.system")


def test_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of layers, keras_model and huggingface"):
        Spec.model_validate({"seed": 1, "layers": [], "huggingface": {"config": {}}})


def test_keras_convention_is_refused() -> None:
    with pytest.raises(SpecError) as error:
        build_plan(Spec.model_validate({"seed": 1, "convention": "keras",
                                        "huggingface": {"config": VARIANTS["gpt2-tied"]}}))
    assert error.value.loc == ("convention",)


def test_without_transformers_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server installed without [hf]: importing transformers fails (None in
    sys.modules makes ``import`` raise ImportError), and the request gets a 422."""
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ExtraMissing) as error:
        build_plan(_spec(VARIANTS["gpt2-tied"]))
    assert error.value.status == 422 and error.value.code == "extra_not_installed"
    assert "weightinit[hf]" in error.value.msg


def test_plans_are_cached_by_the_config_and_deterministic() -> None:
    first = build_plan(_spec(VARIANTS["gpt2-tied"]))
    again = build_plan(_spec(dict(reversed(list(VARIANTS["gpt2-tied"].items())))))
    assert [(o.name, o.shape, o.plan.init.config) for o in first.outputs] == [
        (o.name, o.shape, o.plan.init.config) for o in again.outputs]
