"""Tiny configs of every supported family and their common variants (tied and untied
embeddings, grouped-query attention, biases on and off), shared by the hf tests."""

from __future__ import annotations

from typing import Any

_DECODER: dict[str, Any] = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "vocab_size": 96, "max_position_embeddings": 64,
}
_TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "vocab_size": 96, "max_position_embeddings": 32}
_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
           "num_attention_heads": 4, "image_size": 32, "patch_size": 8}

VARIANTS: dict[str, dict[str, Any]] = {
    "llama-gqa-untied": {"model_type": "llama", **_DECODER, "num_key_value_heads": 2,
                         "architectures": ["LlamaForCausalLM"]},
    "llama-tied-bias": {"model_type": "llama", **_DECODER, "num_key_value_heads": 4,
                        "tie_word_embeddings": True, "attention_bias": True,
                        "mlp_bias": True, "pad_token_id": 0,
                        "architectures": ["LlamaForCausalLM"]},
    "mistral-gqa": {"model_type": "mistral", **_DECODER, "num_key_value_heads": 2,
                    "architectures": ["MistralForCausalLM"]},
    "qwen2-gqa-tied": {"model_type": "qwen2", **_DECODER, "num_key_value_heads": 2,
                       "tie_word_embeddings": True, "architectures": ["Qwen2ForCausalLM"]},
    "qwen3-gqa": {"model_type": "qwen3", **_DECODER, "num_key_value_heads": 2, "head_dim": 8,
                  "architectures": ["Qwen3ForCausalLM"]},
    "gemma-tied": {"model_type": "gemma", **_DECODER, "num_key_value_heads": 1, "head_dim": 8,
                   "architectures": ["GemmaForCausalLM"]},
    "phi3": {"model_type": "phi3", **_DECODER, "num_key_value_heads": 4, "pad_token_id": 0,
             "architectures": ["Phi3ForCausalLM"]},
    "gpt2-tied": {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4,
                  "vocab_size": 96, "n_positions": 64, "architectures": ["GPT2LMHeadModel"]},
    "gpt2-untied-base": {"model_type": "gpt2", "n_embd": 32, "n_layer": 3, "n_head": 4,
                         "vocab_size": 96, "n_positions": 64, "tie_word_embeddings": False,
                         "architectures": ["GPT2LMHeadModel"]},
    "gpt_neox": {"model_type": "gpt_neox", **_DECODER, "architectures": ["GPTNeoXForCausalLM"]},
    "bert-mlm": {"model_type": "bert", **_DECODER, "architectures": ["BertForMaskedLM"]},
    "bert-base": {"model_type": "bert", **_DECODER, "type_vocab_size": 3},
    "roberta-mlm": {"model_type": "roberta", **_DECODER, "pad_token_id": 1,
                    "architectures": ["RobertaForMaskedLM"]},
    "t5-tied": {"model_type": "t5", "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2,
                "num_decoder_layers": 2, "num_heads": 4, "vocab_size": 96,
                "architectures": ["T5ForConditionalGeneration"]},
    "t5-gated-untied": {"model_type": "t5", "d_model": 32, "d_kv": 8, "d_ff": 64,
                        "num_layers": 2, "num_heads": 4, "vocab_size": 96,
                        "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False,
                        "architectures": ["T5ForConditionalGeneration"]},
    "vit-classifier": {"model_type": "vit", **_VISION, "num_labels": 5,
                       "architectures": ["ViTForImageClassification"]},
    "vit-base-nobias": {"model_type": "vit", **_VISION, "qkv_bias": False},
    "clip": {"model_type": "clip", "text_config": _TEXT, "vision_config": _VISION,
             "projection_dim": 16, "architectures": ["CLIPModel"]},
    "whisper": {"model_type": "whisper", "d_model": 32, "encoder_layers": 2,
                "decoder_layers": 2, "encoder_attention_heads": 4,
                "decoder_attention_heads": 4, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
                "vocab_size": 96, "num_mel_bins": 16, "max_source_positions": 32,
                "max_target_positions": 32, "pad_token_id": 0, "bos_token_id": 1,
                "eos_token_id": 2, "decoder_start_token_id": 1,
                "architectures": ["WhisperForConditionalGeneration"]},
}
