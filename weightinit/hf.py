"""Hugging Face models: a ``config.json`` in, ``from_pretrained``-ready weights out.

    import weightinit.hf

    spec = weightinit.hf.pretrained_spec(config, seed=1, dtype="bfloat16")
    client.init(spec, "model.safetensors")          # or build_plan(Spec(...)) locally
    weightinit.hf.save_pretrained(config, "out/", seed=1, dtype="bfloat16",
                                  max_shard_size="5GB")  # config.json + shards + index
    model = weightinit.hf.from_config(config, seed=1, server=URL)  # a ready torch model

Each tensor is drawn from the distribution the family's own init gives it in
``from_config`` of the installed transformers (the ``[hf]`` extra, needed where the plan
is made: here, or on the server given with ``server=``). See ``docs/huggingface.md``.
"""

from weightinit.core.hf import SUPPORTED_FAMILIES, HuggingFaceSource
from weightinit.core.hf.directory import DEFAULT_MAX_SHARD_SIZE, parse_size, shard_layout
from weightinit.service.adapters.hf_model import from_config
from weightinit.service.pretrained import pretrained_spec, save_pretrained

__all__ = ["DEFAULT_MAX_SHARD_SIZE", "SUPPORTED_FAMILIES", "HuggingFaceSource", "from_config",
           "parse_size", "pretrained_spec", "save_pretrained", "shard_layout"]
