"""A Hugging Face GPT-2 (``transformers.GPT2LMHeadModel``) initialized by weightinit.

    pip install transformers
    python examples/gpt2.py --server http://127.0.0.1:8000

gpt2.json writes GPT-2's initialization with ``repeat`` and ``tensor``: every weight
N(0, 0.02), the residual projections (``attn.c_proj``, ``mlp.c_proj``) N(0, 0.02 /
sqrt(2 * n_layer)), biases zero, layer norms one and zero. GPT-2's ``Conv1D`` stores its
weight as (in, out), hence ``tensor`` rather than ``linear``. ``lm_head.weight`` is tied
to ``transformer.wte.weight``: the spec has it once and ``load_weights`` loads it under
both names, with ``strict=True``. The config is a small one (scale n_layer, n_embd,
n_head and the tensors' shapes together for GPT-2 small: 12, 768, 12).
"""

from __future__ import annotations

import math

import torch
from common import fetch_weights, load_spec, parse_args
from transformers import GPT2Config, GPT2LMHeadModel

from weightinit.torch import load_weights

CONFIG = GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=128,
                    bos_token_id=999, eos_token_id=999)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    spec = load_spec("gpt2")
    model = GPT2LMHeadModel(CONFIG)
    weights = fetch_weights(args, spec)
    load_weights(model, weights)  # strict, lm_head tied
    if model.lm_head.weight is not model.transformer.wte.weight:
        raise SystemExit("lm_head.weight is no longer tied to transformer.wte.weight")
    model.eval()
    with torch.no_grad():
        logits = model(torch.zeros(1, 8, dtype=torch.long)).logits
    block = model.transformer.h[0]
    expected = 0.02 / math.sqrt(2 * CONFIG.n_layer)
    print(f"gpt2: loaded {len(model.state_dict())} tensors, logits {tuple(logits.shape)}, "
          f"c_attn std {block.attn.c_attn.weight.std().item():.4f} (0.02), "
          f"c_proj std {block.attn.c_proj.weight.std().item():.4f} ({expected:.4f})")


if __name__ == "__main__":
    main()
