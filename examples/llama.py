"""A Llama-style decoder (``transformers.LlamaForCausalLM``) initialized by weightinit,
in bfloat16.

    pip install transformers
    python examples/llama.py --server http://127.0.0.1:8000

llama.json writes Llama's initialization with ``repeat``: every projection (``linear``
without bias, as Llama has) and the embedding N(0, 0.02), RMS norms one, and an untied
``lm_head.weight`` as a ``tensor``. Grouped-query attention shows in the shapes: 4 query
heads, 2 key/value heads of 16. The rotary ``inv_freq`` buffers are not persistent, so
they are not weights and ``load_state_dict(strict=True)`` does not ask for them.
"""

from __future__ import annotations

import torch
from common import fetch_weights, load_spec, parse_args
from transformers import LlamaConfig, LlamaForCausalLM

from weightinit.torch import load_weights

CONFIG = LlamaConfig(hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, vocab_size=1000,
                     max_position_embeddings=128, bos_token_id=1, eos_token_id=2)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    spec = load_spec("llama")
    model = LlamaForCausalLM(CONFIG).to(torch.bfloat16)
    weights = fetch_weights(args, spec)
    load_weights(model, weights)  # strict: every key, nothing extra
    model.eval()
    with torch.no_grad():
        logits = model(torch.zeros(1, 8, dtype=torch.long)).logits
    q_proj = model.model.layers[0].self_attn.q_proj.weight
    norms_one = all(bool((m.weight == 1).all()) for m in model.modules()
                    if type(m).__name__.endswith("RMSNorm"))
    print(f"llama: loaded {len(model.state_dict())} tensors ({q_proj.dtype}), logits "
          f"{tuple(logits.shape)}, q_proj std {q_proj.float().std().item():.4f} (0.02), "
          f"RMS norms one: {norms_one}")


if __name__ == "__main__":
    main()
