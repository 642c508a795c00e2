"""The benchmark's models: weightinit specs, and the torch calls that make the same tensors.

* ``llama_spec``: a Llama-style decoder (embedding, ``layers`` blocks of RMSNorm + four
  attention projections + RMSNorm + gate/up/down MLP, final norm, untied ``lm_head``),
  every matrix N(0, 0.02), every norm weight ones. hidden 2048, 16 layers, intermediate
  5632, vocab 32000 is about 0.95B parameters; hidden 4096, 32 layers, intermediate 11008
  is the 6.7B ("7B") of the memory check.
* ``conv_mlp_spec``: a conv stem and five stages of 3x3 convolutions (``he_uniform``), then
  an MLP (``glorot_uniform``), biases zero, float32: the uniform-distribution case.
* ``torch_recipe``: what a torch user writes for the same model, derived from the plan
  itself (same names, shapes, dtypes, distributions), so the peer and weightinit make
  files of exactly the same size. ``peer_torch.py`` runs it in a child process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NORMAL_002 = {"name": "normal", "mean": 0.0, "std": 0.02}


@dataclass(frozen=True)
class LlamaShape:
    """Dimensions of a Llama-style decoder (untied head); ``kv_dim`` is the rows of the
    key and value projections: ``hidden`` (multi-head attention) unless given, e.g. 8 KV
    heads of 64 = 512 for grouped-query attention."""

    hidden: int = 2048
    layers: int = 16
    intermediate: int = 5632
    vocab: int = 32000
    kv_dim: int | None = None


LLAMA_1B = LlamaShape()
LLAMA_7B = LlamaShape(hidden=4096, layers=32, intermediate=11008, vocab=32000)
# The 1B of TinyLlama's shape: 32 query heads of 64, 8 key/value heads (0.85B parameters).
LLAMA_1B_GQA = LlamaShape(kv_dim=512)


def _linear(name: str, fan_in: int, fan_out: int) -> dict[str, Any]:
    return {"type": "linear", "name": name, "in_features": fan_in, "out_features": fan_out,
            "bias": False, "weight_init": NORMAL_002}


def llama_spec(dtype: str, shape: LlamaShape = LLAMA_1B, seed: int = 2024) -> dict[str, Any]:
    """The Llama-style decoder as a weightinit spec (torch names, as in transformers)."""
    h, inner = shape.hidden, shape.intermediate
    kv = shape.kv_dim or h
    block = [
        {"type": "rms_norm", "name": "input_layernorm", "normalized_shape": h},
        _linear("self_attn.q_proj", h, h),
        _linear("self_attn.k_proj", h, kv),
        _linear("self_attn.v_proj", h, kv),
        _linear("self_attn.o_proj", h, h),
        {"type": "rms_norm", "name": "post_attention_layernorm", "normalized_shape": h},
        _linear("mlp.gate_proj", h, inner),
        _linear("mlp.up_proj", h, inner),
        _linear("mlp.down_proj", inner, h),
    ]
    return {"seed": seed, "convention": "torch", "dtype": dtype, "layers": [
        {"type": "embedding", "name": "model.embed_tokens", "num_embeddings": shape.vocab,
         "embedding_dim": h, "embedding_init": NORMAL_002},
        {"type": "repeat", "name": "model.layers", "count": shape.layers, "layers": block},
        {"type": "rms_norm", "name": "model.norm", "normalized_shape": h},
        _linear("lm_head", h, shape.vocab),
    ]}


def conv_mlp_spec(width: int = 8192, stages: tuple[int, ...] = (64, 128, 256, 512, 1024),
                  seed: int = 2024) -> dict[str, Any]:
    """Conv stem + 3x3 stages (he_uniform) + a 4-layer MLP of ``width`` (glorot_uniform).

    With the defaults: 0.36B float32 parameters (1.45 GB), 95 % of them in the MLP.
    """
    conv = {"weight_init": "he_uniform", "bias_init": "zeros"}
    dense = {"weight_init": "glorot_uniform", "bias_init": "zeros"}
    layers: list[dict[str, Any]] = [
        {"type": "conv2d", "name": "stem", "in_channels": 3, "out_channels": stages[0],
         "kernel_size": 7, **conv}]
    previous = stages[0]
    for index, channels in enumerate(stages):
        for part in range(2):
            layers.append({"type": "conv2d", "name": f"stage{index}.conv{part}",
                           "in_channels": previous, "out_channels": channels,
                           "kernel_size": 3, **conv})
            previous = channels
    fan_in = 2 * width
    for index in range(4):
        layers.append({"type": "linear", "name": f"mlp.fc{index}", "in_features": fan_in,
                       "out_features": width, **dense})
        fan_in = width
    layers.append({"type": "linear", "name": "head", "in_features": width,
                   "out_features": 1000, **dense})
    return {"seed": seed, "convention": "torch", "dtype": "float32", "layers": layers}


# The torch function a user would call for each resolved initializer (torch computes the
# same fans from the tensor's shape: (out, in, *kernel)).
_TORCH_NAMED = {"he_uniform": ("kaiming_uniform_", {"nonlinearity": "relu"}),
                "glorot_uniform": ("xavier_uniform_", {})}


def torch_recipe(plan: Any) -> list[dict[str, Any]]:
    """For each tensor of ``plan``: name, shape, dtype and the ``torch.nn.init`` call."""
    recipe = []
    for output in plan.outputs:
        init, sampler = output.plan.init, output.plan.init.sampler
        name = init.config["name"]
        if name in _TORCH_NAMED:
            function, kwargs = _TORCH_NAMED[name]
        elif hasattr(sampler, "value"):
            function, kwargs = "constant_", {"val": sampler.value}
        elif getattr(sampler, "transform", None) is not None and \
                sampler.transform.kind == "normal":
            function, kwargs = "normal_", {"mean": sampler.transform.mean,
                                           "std": sampler.transform.std}
        elif getattr(sampler, "transform", None) is not None and \
                sampler.transform.kind == "uniform":
            function, kwargs = "uniform_", {"a": sampler.transform.low,
                                            "b": sampler.transform.high}
        else:
            raise ValueError(f"{output.name}: no torch equivalent wired for {name}")
        recipe.append({"name": output.name, "shape": list(output.shape),
                       "dtype": output.plan.dtype, "init": function, "kwargs": kwargs})
    return recipe
