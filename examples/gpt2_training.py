"""Does a model trained from weightinit's weights train like one from ``from_config``?

    pip install -e ".[hf]"
    python examples/gpt2_training.py --server http://127.0.0.1:8000 [--steps 300]

A tiny GPT-2 (2 layers, width 64, vocabulary 128, no dropout) is trained at seeds 1, 2
and 3 from two starts: transformers' own ``GPT2LMHeadModel(config)`` (its
``_init_weights``, what ``from_config`` runs) under ``torch.manual_seed(seed)``, and
weightinit's weights for the same config (``spec_from_model(..., init="huggingface")``,
loaded into a model built in ``empty_weights()``). Every run sees the same batches in
the same order: token sequences drawn from a random Markov chain generated here
(nothing is downloaded), whose entropy rate is the loss floor. ``--with-torch-init`` adds
the runs from torch's constructor defaults (``init="module"``), for contrast.

The curves agree when, at every checkpoint, the two starts' mean losses differ by no
more than the seed-to-seed spread (the larger of the two groups' max - min). The last
line says whether they do; examples/README.md has the numbers of a full run.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from weightinit import Client
from weightinit.torch import empty_weights, load_weights, spec_from_model

SEEDS = (1, 2, 3)
VOCAB, LENGTH, BATCH = 128, 32, 16
CONFIG = dict(vocab_size=VOCAB, n_positions=LENGTH, n_embd=64, n_layer=2, n_head=4,
              resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
              eos_token_id=0)


def markov_batches(steps: int, data_seed: int = 0) -> tuple[torch.Tensor, float]:
    """``steps`` batches of token sequences from a random Markov chain (each token allows
    4 next tokens, with Dirichlet weights), and the chain's entropy rate in nats (about
    the lowest loss a model can reach; the first token of each sequence is uniform)."""
    rng = np.random.default_rng(data_seed)
    choices = rng.integers(0, VOCAB, size=(VOCAB, 4))
    weights = rng.dirichlet(np.ones(4), size=VOCAB)
    tokens = np.empty((steps * BATCH, LENGTH), dtype=np.int64)
    tokens[:, 0] = rng.integers(0, VOCAB, size=steps * BATCH)
    cumulative = weights.cumsum(-1)
    for position in range(1, LENGTH):
        previous = tokens[:, position - 1]
        pick = (rng.random(len(tokens))[:, None] > cumulative[previous]).sum(-1)
        tokens[:, position] = choices[previous, np.minimum(pick, 3)]
    entropy = float(-(weights * np.log(weights)).sum(-1).mean())
    return torch.from_numpy(tokens).reshape(steps, BATCH, LENGTH), entropy


def train(model: Any, batches: torch.Tensor, every: int) -> list[float]:
    """AdamW (lr 3e-3) over the batches; the mean loss of each window of ``every`` steps."""
    torch.manual_seed(0)  # nothing random remains in training (no dropout); fixed anyway
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    losses, window = [], []
    for batch in batches:
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window.append(loss.item())
        if len(window) == every:
            losses.append(statistics.fmean(window))
            window = []
    return losses


def from_config(seed: int) -> Any:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(**CONFIG))  # post_init runs GPT-2's _init_weights


def from_weightinit(client: Client, init: str) -> Callable[[int], Any]:
    def build(seed: int) -> Any:
        with empty_weights():
            model = GPT2LMHeadModel(GPT2Config(**CONFIG))
        load_weights(model, client.init(spec_from_model(model, seed, init=init)))
        return model
    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("WEIGHTINIT_URL",
                                                           "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("WEIGHTINIT_TOKEN"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=25, help="steps per checkpoint")
    parser.add_argument("--with-torch-init", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    batches, entropy = markov_batches(args.steps)
    with Client(args.server, token=args.token) as client:
        starts = {"from_config": from_config,
                  "weightinit": from_weightinit(client, "huggingface")}
        if args.with_torch_init:
            starts["torch_init"] = from_weightinit(client, "module")
        curves = {name: [train(build(seed), batches, args.every) for seed in SEEDS]
                  for name, build in starts.items()}
    report(curves, args.every, entropy)


def report(curves: dict[str, list[list[float]]], every: int, entropy: float) -> None:
    names = list(curves)
    print(f"loss floor (the chain's entropy): {entropy:.3f} nats; initial loss of a "
          f"uniform guess: {math.log(VOCAB):.3f}")
    print("step  " + "  ".join(f"{name:>26}" for name in names) + "  |diff|  spread")
    agree = True
    for index in range(len(curves[names[0]][0])):
        cells, means, spreads = [], [], []
        for name in names:
            values = [curve[index] for curve in curves[name]]
            means.append(statistics.fmean(values))
            spreads.append(max(values) - min(values))
            cells.append(f"{means[-1]:.3f} [{min(values):.3f}, {max(values):.3f}]")
        diff, spread = abs(means[0] - means[1]), max(spreads[0], spreads[1])
        agree &= diff <= spread
        print(f"{(index + 1) * every:>4}  " + "  ".join(f"{c:>26}" for c in cells)
              + f"  {diff:.3f}  {spread:.3f}")
    print(f"gpt2_training: {len(curves[names[0]])} seeds x {names}, final "
          + ", ".join(f"{n} {statistics.fmean(c[-1] for c in curves[n]):.3f}" for n in names)
          + f"; within the seed-to-seed spread at every checkpoint: {agree}")


if __name__ == "__main__":
    main()
