"""``spec_from_module(model, seed, init="huggingface")``: a transformers model's spec as
the ``huggingface`` spec source, so the server applies the family's own ``_init_weights``
rules (the rules live in one place, ``weightinit.core.hf``; this adapter only names the
model). Tensor names are ``save_pretrained``'s, which are the model's ``state_dict`` keys
less tied aliases: what ``load_weights`` expects.
"""

from __future__ import annotations

from typing import Any


def huggingface_spec(model: Any, seed: int, *, dtype: str | None = None) -> dict[str, Any]:
    """``{"seed", "dtype", "huggingface": {"config", "architecture"}}`` for a
    ``transformers.PreTrainedModel`` (its config and its class as the architecture)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise ValueError(
            f"init='huggingface' needs a transformers model (one with a .config), not "
            f"{type(model).__name__}; use init='module' for other modules"
        )
    body: dict[str, Any] = {"config": json_config(config.to_dict()),
                            "architecture": type(model).__name__}
    spec: dict[str, Any] = {"seed": seed, "huggingface": body}
    spec["dtype"] = dtype or _model_dtype(model)
    return spec


def json_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config as config.json holds it: torch dtypes as their names."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out[key] = json_config(value)
        elif type(value).__module__ == "torch":  # a torch.dtype
            out[key] = str(value).removeprefix("torch.")
        else:
            out[key] = value
    return out


def _model_dtype(model: Any) -> str:
    """The model's most common floating dtype (float32 when it has no parameters)."""
    names = [str(p.dtype).removeprefix("torch.") for p in model.parameters()
             if p.is_floating_point()]
    return max(set(names), key=names.count) if names else "float32"


def checkpoint_names(model: Any) -> dict[str, str]:
    """{name as ``save_pretrained`` writes it: ``state_dict`` name} for a transformers
    model whose checkpoint names differ from its module names (transformers 5 renames some
    families' weights on load, e.g. ViT's ``encoder.layer.0.attention.attention.query``
    is the module's ``layers.0.attention.q_proj``; GPT-NeoX's ``embed_out`` its
    ``lm_head``). Empty for any other module. Tensors a converter fuses or splits have
    no one-to-one names and are left out (``from_pretrained`` loads those)."""
    if not hasattr(model, "config") or not hasattr(model, "state_dict"):
        return {}
    try:
        from transformers.core_model_loading import revert_weight_conversion
    except ImportError:
        return {}
    state = model.state_dict(keep_vars=True)
    try:
        reverted = revert_weight_conversion(model, dict(state))
    except Exception:  # a converter that cannot run on these tensors: no renames known
        return {}
    by_identity = {id(tensor): name for name, tensor in state.items()}
    names = {}
    for disk_name, tensor in reverted.items():
        model_name = by_identity.get(id(tensor))
        if model_name is not None and model_name != disk_name:
            names[disk_name] = model_name
    return names
