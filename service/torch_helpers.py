"""PyTorch helpers: a spec from an ``nn.Module``, and weights loaded back into it.

    from weightinit.service.torch_helpers import spec_from_module, load_into

    with torch.device("meta"):
        model = MyModel()                       # no memory, no init cost
    spec = spec_from_module(model, seed=1234)   # torch convention, names = state_dict keys
    load_into(model, client.init(spec))         # strict: every key, nothing extra

torch is imported only where these functions are called: weightinit itself does not
depend on it. Every module type the spec language has (Linear, Conv*/ConvTranspose*,
Embedding/EmbeddingBag, LayerNorm, RMSNorm, BatchNorm*/InstanceNorm*, GroupNorm, LSTM,
GRU, MultiheadAttention, and PReLU as a constant ``tensor``) becomes its layer with
torch's own defaults; containers are walked. A module that holds parameters (or
persistent buffers) of its own but has no layer type is an error naming it, unless
``fallback="tensor"``, which writes each such tensor as an explicit ``tensor`` layer
with ``fallback_init``. Tied parameters (GPT-2's ``lm_head.weight`` is ``wte.weight``)
are generated once and loaded under every name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import numpy as np

DEFAULT_FALLBACK_INIT: dict[str, Any] = {"name": "normal", "mean": 0.0, "std": 0.02}
_SPEC_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64"})  # torch's names too

FallbackInit = dict[str, Any] | Callable[[str, Any], dict[str, Any]]


class UnsupportedModuleError(ValueError):
    """Modules whose own parameters no layer type expresses (``modules``: name -> class)."""

    def __init__(self, modules: dict[str, str], tensors: list[str]) -> None:
        listed = ", ".join(f"{name or '<root>'} ({kind})" for name, kind in modules.items())
        super().__init__(
            f"no weightinit layer type for {listed}, holding {', '.join(tensors)}. Pass "
            "fallback='tensor' to initialize these as explicit `tensor` layers "
            f"(fallback_init, default {DEFAULT_FALLBACK_INIT}), or describe them yourself."
        )
        self.modules = modules
        self.tensors = tensors


def _layer(module: Any, name: str) -> dict[str, Any] | None:
    """The spec layer of a supported module, or None when there is no layer type for it."""
    import torch.nn as nn

    if isinstance(module, nn.Linear) and not isinstance(module, nn.modules.lazy.LazyModuleMixin):
        return {"type": "linear", "name": name, "in_features": module.in_features,
                "out_features": module.out_features, "bias": module.bias is not None}
    if isinstance(module, nn.modules.conv._ConvNd) and not isinstance(
        module, nn.modules.lazy.LazyModuleMixin
    ):
        rank = len(module.kernel_size)
        return {"type": f"conv{rank}d", "name": name, "in_channels": module.in_channels,
                "out_channels": module.out_channels, "kernel_size": list(module.kernel_size),
                "groups": module.groups, "bias": module.bias is not None,
                "transposed": bool(module.transposed)}
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        layer = {"type": "embedding", "name": name, "num_embeddings": module.num_embeddings,
                 "embedding_dim": module.embedding_dim}
        if module.padding_idx is not None:
            layer["padding_idx"] = module.padding_idx
        return layer
    if isinstance(module, nn.LayerNorm):
        return {"type": "layer_norm", "name": name,
                "normalized_shape": list(module.normalized_shape),
                "elementwise_affine": module.elementwise_affine,
                "bias": getattr(module, "bias", None) is not None}
    if hasattr(nn, "RMSNorm") and isinstance(module, nn.RMSNorm):
        return {"type": "rms_norm", "name": name,
                "normalized_shape": list(module.normalized_shape),
                "elementwise_affine": module.elementwise_affine}
    if isinstance(module, nn.modules.batchnorm._NormBase):  # BatchNorm*, InstanceNorm*
        return {"type": "batch_norm", "name": name, "num_features": module.num_features,
                "affine": module.affine, "track_running_stats": module.track_running_stats}
    if isinstance(module, nn.GroupNorm):
        return {"type": "group_norm", "name": name, "num_groups": module.num_groups,
                "num_channels": module.num_channels, "affine": module.affine}
    if isinstance(module, nn.LSTM | nn.GRU):
        layer = {"type": "lstm" if isinstance(module, nn.LSTM) else "gru", "name": name,
                 "input_size": module.input_size, "hidden_size": module.hidden_size,
                 "num_layers": module.num_layers, "bias": module.bias,
                 "bidirectional": module.bidirectional}
        if isinstance(module, nn.LSTM) and module.proj_size:
            layer["proj_size"] = module.proj_size
        return layer
    if isinstance(module, nn.PReLU):  # reset_parameters: the constant it was made with
        return {"type": "tensor", "name": f"{name}.weight", "shape": [module.num_parameters],
                "init": {"name": "constant", "value": float(module.init)}}
    if isinstance(module, nn.MultiheadAttention):
        return {"type": "multihead_attention", "name": name, "embed_dim": module.embed_dim,
                "num_heads": module.num_heads, "bias": module.in_proj_bias is not None,
                "add_bias_kv": module.bias_k is not None, "kdim": module.kdim,
                "vdim": module.vdim}
    return None


def _own_tensors(module: Any, prefix: str) -> Iterator[tuple[str, Any, bool]]:
    """(full name, tensor, is_parameter) of what a module holds itself, as state_dict has
    it: parameters, then persistent buffers."""
    for local, parameter in module._parameters.items():
        if parameter is not None:
            yield prefix + local, parameter, True
    for local, buffer in module._buffers.items():
        if buffer is not None and local not in module._non_persistent_buffers_set:
            yield prefix + local, buffer, False


def _all_tensors(module: Any, prefix: str) -> Iterator[tuple[str, Any, bool]]:
    for name, child in module.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
        yield from _own_tensors(child, f"{name}." if name else "")


def _dtype_name(tensor: Any) -> str | None:
    """The spec dtype of a tensor; None for one no spec dtype matches (integers, float8)."""
    name = str(tensor.dtype).removeprefix("torch.")
    return name if name in _SPEC_DTYPES else None


def tied_names(module: Any) -> dict[str, str]:
    """Each parameter name that aliases an earlier one (same tensor) -> that first name."""
    first: dict[int, str] = {}
    aliases = {}
    for name, tensor, _ in _all_tensors(module, ""):
        key = id(tensor)
        if key in first:
            aliases[name] = first[key]
        else:
            first[key] = name
    return aliases


def spec_from_module(
    module: Any, seed: int, *, dtype: str | None = None,
    fallback: Literal["error", "tensor"] = "error",
    fallback_init: FallbackInit = DEFAULT_FALLBACK_INIT,
) -> dict[str, Any]:
    """A torch-convention spec whose tensors are ``module.state_dict()``'s (tied aliases
    once), each with torch's own default initializer for its layer type.

    ``dtype`` defaults to the module's most common floating dtype; layers in another one
    carry their own. ``fallback="tensor"`` turns each tensor of a module with no layer
    type into a ``tensor`` layer initialized with ``fallback_init`` (a dict, or a function
    of the tensor's name and the tensor that returns one)."""
    from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

    if fallback not in ("error", "tensor"):
        raise ValueError(f"fallback is 'error' or 'tensor', not {fallback!r}")
    lazy = [name for name, tensor, _ in _all_tensors(module, "")
            if isinstance(tensor, UninitializedParameter | UninitializedBuffer)]
    if lazy:
        raise ValueError(f"lazy modules have no shapes yet ({', '.join(lazy)}): run one "
                         "forward pass (or build them) first")
    aliases = tied_names(module)
    floating = [d for _, t, _ in _all_tensors(module, "") if (d := _dtype_name(t))]
    spec_dtype = dtype or (max(set(floating), key=floating.count) if floating else "float32")
    layers: list[dict[str, Any]] = []
    unsupported: dict[str, str] = {}
    leftovers: list[tuple[str, Any, bool]] = []

    def visit(child: Any, name: str) -> None:
        prefix = f"{name}." if name else ""
        layer = _layer(child, name) if name else None
        if layer is not None:
            held = list(_all_tensors(child, prefix))
            untied = [t for t in held if t[0] not in aliases]
            if len(untied) == len(held):
                dtypes = {d for _, t, _ in held if (d := _dtype_name(t))}
                if len(dtypes) == 1 and (layer_dtype := dtypes.pop()) != spec_dtype:
                    layer["dtype"] = layer_dtype
                layers.append(layer)
            elif untied:  # partly tied: the layer cannot be half-generated
                unsupported[name] = f"{type(child).__name__} with tied parameters"
                leftovers.extend(untied)
            return  # (wholly tied, e.g. a tied head: nothing to generate)
        own = [t for t in _own_tensors(child, prefix) if t[0] not in aliases]
        if own:
            unsupported[name] = type(child).__name__
            leftovers.extend(own)
        for child_name, grandchild in child.named_children():
            visit(grandchild, prefix + child_name)

    if _layer(module, "root") is not None:
        raise ValueError(
            f"the root module is itself a layer ({type(module).__name__}): its state_dict keys "
            "have no layer name to carry; wrap it, e.g. nn.Sequential(module)"
        )
    visit(module, "")
    if leftovers and fallback == "error":
        raise UnsupportedModuleError(unsupported, [n for n, _, _ in leftovers])
    for name, tensor, is_parameter in leftovers:
        init = fallback_init(name, tensor) if callable(fallback_init) else fallback_init
        if not is_parameter and not callable(fallback_init):
            init = {"name": "zeros"}  # a buffer (a statistic, a counter): not random
        layer = {"type": "tensor", "name": name, "shape": list(tensor.shape), "init": init}
        if (tensor_dtype := _dtype_name(tensor)) and tensor_dtype != spec_dtype:
            layer["dtype"] = tensor_dtype
        layers.append(layer)
    spec = {"seed": seed, "convention": "torch", "dtype": spec_dtype, "layers": layers}
    _check_matches(module, spec, aliases)
    return spec


def _check_matches(module: Any, spec: dict[str, Any], aliases: dict[str, str]) -> None:
    """The spec's tensors must be the state_dict's keys (less aliases) with their shapes:
    what makes ``load_into(..., strict=True)`` succeed."""
    from weightinit.core import Spec, build_plan
    from weightinit.core.plan import Limits

    plan = build_plan(Spec.model_validate(spec), Limits(max_tensors=1 << 40,
                                                        max_parameters=1 << 62))
    planned = {o.name: tuple(o.shape) for o in plan.outputs}
    wanted = {name: tuple(t.shape) for name, t, _ in _all_tensors(module, "")
              if name not in aliases}
    if planned != wanted:
        differing = sorted(set(planned.items()) ^ set(wanted.items()))[:8]
        raise RuntimeError(f"spec and state_dict disagree (a weightinit bug): {differing}")


def _as_torch(value: Any) -> Any:
    """A numpy array (bfloat16 from ml_dtypes included) or torch tensor as a torch tensor,
    sharing memory where it can."""
    import torch

    if isinstance(value, torch.Tensor):
        return value
    array = np.asarray(value)
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.view(np.uint16)).view(torch.bfloat16)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


def load_into(module: Any, tensors: Mapping[str, Any] | str | os.PathLike[str], *,
              strict: bool = True) -> Any:
    """Load weights (a dict of numpy arrays or torch tensors, or a safetensors file) into
    ``module`` with ``load_state_dict(strict=...)``; a module on the meta device gets the
    tensors assigned (and tied parameters tied again). Returns load_state_dict's result."""
    if isinstance(tensors, str | os.PathLike):
        from safetensors.torch import load_file

        tensors = load_file(os.fspath(tensors))
    state = {name: _as_torch(value) for name, value in tensors.items()}
    aliases = tied_names(module)
    for alias, first in aliases.items():
        if alias not in state and first in state:
            state[alias] = state[first]
    on_meta = any(t.is_meta for _, t, _ in _all_tensors(module, ""))
    result = module.load_state_dict(state, strict=strict, assign=on_meta)
    if on_meta and aliases:
        _retie(module, aliases)
    return result


def _retie(module: Any, aliases: dict[str, str]) -> None:
    """After ``assign=True`` each name holds its own tensor: make aliases share again."""
    for alias, first in aliases.items():
        owner_name, _, attribute = alias.rpartition(".")
        source_name, _, source_attribute = first.rpartition(".")
        owner = module.get_submodule(owner_name)
        source = module.get_submodule(source_name)
        setattr(owner, attribute, getattr(source, source_attribute))
