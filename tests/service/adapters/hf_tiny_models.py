"""Tiny Hugging Face models of every family the torch adapter must cover, built from
configs written here (nothing is downloaded), with an input for one forward pass each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

transformers = __import__("pytest").importorskip("transformers")

_TOKENS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
_DECODER = {"vocab_size": 96, "hidden_size": 16, "intermediate_size": 32,
            "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64,
            **_TOKENS}


def _ids(batch: int = 2, length: int = 7) -> torch.Tensor:
    return torch.arange(batch * length).reshape(batch, length) % 90 + 3


def _text() -> dict[str, torch.Tensor]:
    return {"input_ids": _ids()}


def _pixels(size: int = 8) -> dict[str, torch.Tensor]:
    grid = torch.linspace(-1, 1, 2 * 3 * size * size).reshape(2, 3, size, size)
    return {"pixel_values": grid}


def _seq2seq() -> dict[str, torch.Tensor]:
    return {"input_ids": _ids(), "decoder_input_ids": _ids(2, 5)}


def _whisper() -> dict[str, torch.Tensor]:
    features = torch.linspace(-1, 1, 2 * 8 * 32).reshape(2, 8, 32)
    return {"input_features": features, "decoder_input_ids": _ids(2, 5)}


def _clip() -> dict[str, torch.Tensor]:
    return {**_text(), **_pixels()}


def _case(config: Callable[[], Any], model: str, inputs: Callable[[], dict[str, Any]]
          ) -> tuple[Callable[[], Any], str, Callable[[], dict[str, Any]]]:
    return config, model, inputs


T = transformers
CASES: dict[str, tuple[Callable[[], Any], str, Callable[[], dict[str, Any]]]] = {
    "llama": _case(lambda: T.LlamaConfig(**_DECODER, num_key_value_heads=2),
                   "LlamaForCausalLM", _text),
    "llama_tied": _case(lambda: T.LlamaConfig(**_DECODER, num_key_value_heads=4,
                                              tie_word_embeddings=True, attention_bias=True),
                        "LlamaForCausalLM", _text),
    "mistral": _case(lambda: T.MistralConfig(**_DECODER, num_key_value_heads=2),
                     "MistralForCausalLM", _text),
    "qwen2": _case(lambda: T.Qwen2Config(**_DECODER, num_key_value_heads=2),
                   "Qwen2ForCausalLM", _text),
    "qwen3": _case(lambda: T.Qwen3Config(**_DECODER, num_key_value_heads=2, head_dim=8),
                   "Qwen3ForCausalLM", _text),
    "gemma": _case(lambda: T.GemmaConfig(**_DECODER, num_key_value_heads=1, head_dim=8),
                   "GemmaForCausalLM", _text),
    "phi3": _case(lambda: T.Phi3Config(**_DECODER, num_key_value_heads=2),
                  "Phi3ForCausalLM", _text),
    "gpt2": _case(lambda: T.GPT2Config(vocab_size=96, n_embd=16, n_layer=2, n_head=4,
                                       n_positions=64, bos_token_id=1, eos_token_id=2),
                  "GPT2LMHeadModel", _text),
    "gpt_neox": _case(lambda: T.GPTNeoXConfig(**_DECODER), "GPTNeoXForCausalLM", _text),
    "bert": _case(lambda: T.BertConfig(**_DECODER), "BertForMaskedLM", _text),
    "roberta": _case(lambda: T.RobertaConfig(**{**_DECODER, "pad_token_id": 1}),
                     "RobertaForMaskedLM", _text),
    "t5": _case(lambda: T.T5Config(vocab_size=96, d_model=16, d_kv=4, d_ff=32, num_layers=2,
                                   num_heads=4, decoder_start_token_id=0, **_TOKENS),
                "T5ForConditionalGeneration", _seq2seq),
    "vit": _case(lambda: T.ViTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=32, image_size=8, patch_size=4,
                                     num_labels=3),
                 "ViTForImageClassification", _pixels),
    "clip": _case(lambda: T.CLIPConfig(
        text_config={"vocab_size": 96, "hidden_size": 16, "intermediate_size": 32,
                     "num_hidden_layers": 2, "num_attention_heads": 4,
                     "max_position_embeddings": 16, **_TOKENS},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "image_size": 8, "patch_size": 4},
        projection_dim=8), "CLIPModel", _clip),
    "whisper": _case(lambda: T.WhisperConfig(
        vocab_size=96, d_model=16, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=32,
        decoder_ffn_dim=32, num_mel_bins=8, max_source_positions=16, max_target_positions=16,
        decoder_start_token_id=3, **_TOKENS), "WhisperForConditionalGeneration", _whisper),
    "convnext": _case(lambda: T.ConvNextConfig(num_channels=3, hidden_sizes=[8, 16],
                                               depths=[1, 1], num_stages=2, num_labels=3,
                                               layer_scale_init_value=0.25),
                      "ConvNextForImageClassification", lambda: _pixels(16)),
}


def build(case: str) -> Any:
    """The model of ``case`` built on the CPU (eval mode: no dropout)."""
    config, model_class, _ = CASES[case]
    return getattr(transformers, model_class)(config()).eval()


def inputs(case: str) -> dict[str, Any]:
    return CASES[case][2]()


def outputs(model: Any, case: str) -> list[torch.Tensor]:
    """The tensors of the model's forward pass on the case's inputs (no grad)."""
    with torch.no_grad():
        result = model(**inputs(case))
    return [value for value in result.values() if isinstance(value, torch.Tensor)]
