"""PyTorch helpers: a spec from an ``nn.Module`` (loading is ``torch_loading``).

    from weightinit.torch import empty_weights, load_weights, spec_from_model

    with empty_weights():
        model = MyModel()                       # parameters on meta: no memory, no init
    spec = spec_from_model(model, seed=1234)    # torch convention, names = state_dict keys
    load_weights(model, client.init(spec))      # strict: every key, nothing extra

torch is imported only where these functions are called: weightinit itself does not
depend on it. Every module type the spec language has (Linear, Conv*/ConvTranspose*,
Embedding/EmbeddingBag, LayerNorm, RMSNorm, BatchNorm*/InstanceNorm*, GroupNorm, LSTM,
GRU, MultiheadAttention, and PReLU as a constant ``tensor``) becomes its layer with
torch's own defaults; containers are walked. A module with tensors of its own and no
layer type (an ``*RMSNorm`` class, GPT-2's ``Conv1D``, a class token, ``logit_scale``)
gets each tensor as its ``__init__`` starts it (``torch_constructor_inits``): a module
whose own parameters are a constant ``weight`` (and ``bias``) becomes ``rms_norm``
(``layer_norm``), ``Conv1D``'s weight keeps its linear fans (stored (in, out)), the
rest become ``tensor`` layers. What cannot be read that way is an error naming it,
unless ``fallback="tensor"``. Tied parameters (GPT-2's ``lm_head.weight`` is
``wte.weight``) are generated once and loaded under every name.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
from weightinit.service.adapters.torch_constructor_inits import constructor_inits

DEFAULT_FALLBACK_INIT: dict[str, Any] = {"name": "normal", "mean": 0.0, "std": 0.02}
_SPEC_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64"})  # torch's names too

FallbackInit = dict[str, Any] | Callable[[str, Any], dict[str, Any]]
InitSemantics = Literal["module", "huggingface"]


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
    convolutions = (nn.Conv1d, nn.Conv2d, nn.Conv3d,
                    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    if isinstance(module, convolutions) and not isinstance(
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
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
             nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
    if isinstance(module, norms) and not isinstance(module, nn.modules.lazy.LazyModuleMixin):
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
    for local, parameter in module.named_parameters(recurse=False, remove_duplicate=False):
        yield prefix + local, parameter, True
    for local, buffer in module.named_buffers(recurse=False, remove_duplicate=False):
        if _persistent(module, local):
            yield prefix + local, buffer, False


def _persistent(module: Any, name: str) -> bool:
    """Whether ``state_dict`` saves the module's own buffer ``name``.

    torch has no public accessor for it: the names registered with ``persistent=False``
    are in the private ``_non_persistent_buffers_set``. The public alternative, calling
    ``state_dict``, runs the module's state-dict hooks (FSDP2's reshard its parameters),
    so the set is read, and a torch without it is taken as saving every buffer."""
    return name not in getattr(module, "_non_persistent_buffers_set", ())


def state_tensors(module: Any, prefix: str) -> Iterator[tuple[str, Any, bool]]:
    """(name, tensor, is_parameter) of every ``state_dict`` entry, tied aliases included."""
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
    for name, tensor, _ in state_tensors(module, ""):
        key = id(tensor)
        if key in first:
            aliases[name] = first[key]
        else:
            first[key] = name
    return aliases


def spec_from_model(
    module: Any, seed: int, *, dtype: str | None = None,
    init: InitSemantics = "module",
    fallback: Literal["error", "tensor"] = "error",
    fallback_init: FallbackInit = DEFAULT_FALLBACK_INIT,
) -> dict[str, Any]:
    """A spec whose tensors are ``module.state_dict()``'s (tied aliases once).

    Args:
        module: the model (on any device, the meta device included).
        seed: the spec's seed.
        dtype: the spec's dtype; default the module's most common floating dtype (layers
            in another one carry their own).
        init: ``"module"``: each tensor starts as the module's own constructor leaves it
            (torch's layer defaults; a custom module's ``__init__``, e.g. an RMSNorm's
            ones). ``"huggingface"``: a transformers model gets its family's
            ``_init_weights`` rules through the ``huggingface`` spec source (needs the
            ``[hf]`` extra).
        fallback: ``"error"`` raises ``UnsupportedModuleError`` naming every tensor whose
            start cannot be read from its module; ``"tensor"`` writes each as a
            ``tensor`` layer with ``fallback_init`` (a dict, or a function of the name and
            the tensor) and warns naming them. A norm's weight falls back to ones (its
            bias to zeros) and a buffer to zeros, never to a random draw.

    Returns:
        The spec, a dict (the request body).
    """
    from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

    if init not in ("module", "huggingface"):
        raise ValueError(f"init is 'module' or 'huggingface', not {init!r}")
    if fallback not in ("error", "tensor"):
        raise ValueError(f"fallback is 'error' or 'tensor', not {fallback!r}")
    lazy = [name for name, tensor, _ in state_tensors(module, "")
            if isinstance(tensor, UninitializedParameter | UninitializedBuffer)]
    if lazy:
        raise ValueError(f"lazy modules have no shapes yet ({', '.join(lazy)}): run one "
                         "forward pass (or build them) first")
    if init == "huggingface":
        from weightinit.service.adapters.torch_hf import huggingface_spec

        return huggingface_spec(module, seed, dtype=dtype)
    if _layer(module, "root") is not None:
        raise ValueError(
            f"the root module is itself a layer ({type(module).__name__}): its state_dict keys "
            "have no layer name to carry; wrap it, e.g. nn.Sequential(module)"
        )
    aliases = tied_names(module)
    floating = [d for _, t, _ in state_tensors(module, "") if (d := _dtype_name(t))]
    spec_dtype = dtype or (max(set(floating), key=floating.count) if floating else "float32")
    walk = _Walk(aliases, spec_dtype)
    walk.visit(module, "")
    if walk.leftovers and fallback == "error":
        raise UnsupportedModuleError(walk.unsupported, [n for n, _, _ in walk.leftovers])
    if walk.leftovers:
        warnings.warn(
            "weightinit could not read how these tensors start from their modules and used "
            f"the fallback: {', '.join(n for n, _, _ in walk.leftovers)}", stacklevel=2,
        )
    for name, tensor, is_parameter in walk.leftovers:
        init_dict = _fallback_for(name, tensor, is_parameter, walk.owner[name], fallback_init)
        walk.layers.append(walk.tensor_layer(name, tensor, init_dict))
    spec = {"seed": seed, "convention": "torch", "dtype": spec_dtype, "layers": walk.layers}
    _check_matches(module, spec, aliases)
    return spec


def _fallback_for(name: str, tensor: Any, is_parameter: bool, module_class: str,
                  fallback_init: FallbackInit) -> dict[str, Any]:
    """The fallback initializer of one unplaced tensor: never random for a norm's
    affine pair or for a buffer (a statistic, a counter)."""
    local = name.rpartition(".")[2]
    if "norm" in module_class.lower() and local in ("weight", "scale", "gamma"):
        return {"name": "ones"}
    if "norm" in module_class.lower() and local in ("bias", "beta", "shift"):
        return {"name": "zeros"}
    if callable(fallback_init):
        return fallback_init(name, tensor)
    return fallback_init if is_parameter else {"name": "zeros"}


class _Walk:
    """One pass over a module tree: layers for what has a layer type, tensor layers for
    custom modules' tensors whose start their constructor determines, leftovers for the
    rest (``unsupported``: module name -> class name)."""

    def __init__(self, aliases: dict[str, str], spec_dtype: str) -> None:
        self.aliases = aliases
        self.spec_dtype = spec_dtype
        self.layers: list[dict[str, Any]] = []
        self.unsupported: dict[str, str] = {}
        self.leftovers: list[tuple[str, Any, bool]] = []
        self.owner: dict[str, str] = {}  # leftover tensor -> its module's class name

    def tensor_layer(self, name: str, tensor: Any, init: dict[str, Any],
                     fans: tuple[int, int] | None = None) -> dict[str, Any]:
        layer: dict[str, Any] = {"type": "tensor", "name": name, "shape": list(tensor.shape),
                                 "init": init}
        if fans is not None:
            layer["fan_in"], layer["fan_out"] = fans
        if (tensor_dtype := _dtype_name(tensor)) and tensor_dtype != self.spec_dtype:
            layer["dtype"] = tensor_dtype
        return layer

    def with_dtype(self, layer: dict[str, Any], held: list[tuple[str, Any, bool]]) -> None:
        dtypes = {d for _, t, _ in held if (d := _dtype_name(t))}
        if len(dtypes) == 1 and (layer_dtype := dtypes.pop()) != self.spec_dtype:
            layer["dtype"] = layer_dtype

    def visit(self, child: Any, name: str, configs: tuple[Any, ...] = ()) -> None:
        prefix = f"{name}." if name else ""
        layer = _layer(child, name) if name else None
        if layer is not None:
            held = list(state_tensors(child, prefix))
            untied = [t for t in held if t[0] not in self.aliases]
            if len(untied) == len(held):
                self.with_dtype(layer, held)
                self.layers.append(layer)
            elif untied:  # partly tied: the layer cannot be half-generated
                self.unsupported[name] = f"{type(child).__name__} with tied parameters"
                self.leftovers.extend(untied)
                self.owner.update((t[0], type(child).__name__) for t in untied)
            return  # (wholly tied, e.g. a tied head: nothing to generate)
        own = [t for t in _own_tensors(child, prefix) if t[0] not in self.aliases]
        if own:
            self.custom(child, name, prefix, own, configs)
        config = getattr(child, "config", None)
        inner = configs if config is None else (config, *configs)
        for child_name, grandchild in child.named_children():
            self.visit(grandchild, prefix + child_name, inner)

    def custom(self, child: Any, name: str, prefix: str,
               own: list[tuple[str, Any, bool]], configs: tuple[Any, ...]) -> None:
        """A module with tensors of its own and no layer type: each tensor as its
        ``__init__`` (or, on a real device, its constant value) says it starts."""
        inits = constructor_inits(child, configs)
        starts = {full: inits.get(full[len(prefix):]) or _constant_value(tensor)
                  for full, tensor, _ in own}
        norm = _norm_layer(child, name, own, starts, prefix)
        if norm is not None:
            self.with_dtype(norm, own)
            self.layers.append(norm)
            return
        fans = _transposed_linear_fans(child)
        for full, tensor, is_parameter in own:
            if starts[full] is None:
                self.unsupported[name] = type(child).__name__
                self.leftovers.append((full, tensor, is_parameter))
                self.owner[full] = type(child).__name__
            else:
                self.layers.append(self.tensor_layer(
                    full, tensor, starts[full],
                    fans if fans and full == f"{prefix}weight" else None,
                ))


def _constant_value(tensor: Any) -> dict[str, Any] | None:
    """A real (not meta) floating tensor whose elements are all one value: that constant."""
    if tensor.is_meta or not tensor.is_floating_point() or tensor.numel() == 0:
        return None
    flat = tensor.detach().reshape(-1)
    first = flat[0]
    if not bool((flat == first).all()):
        return None
    value = float(first)
    if value == 1.0:
        return {"name": "ones"}
    return {"name": "zeros"} if value == 0.0 else {"name": "constant", "value": value}


def _norm_layer(child: Any, name: str, own: list[tuple[str, Any, bool]],
                starts: dict[str, dict[str, Any] | None], prefix: str) -> dict[str, Any] | None:
    """An RMSNorm-like module (own parameters exactly a constant ``weight``) as
    ``rms_norm``, a LayerNorm-like one (plus a constant ``bias`` of the same shape) as
    ``layer_norm``, with the constants as initializers (Gemma's zeros: 1 + weight)."""
    if next(child.children(), None) is not None or not all(
        is_parameter for _, _, is_parameter in own
    ):
        return None
    tensors = {full[len(prefix):]: tensor for full, tensor, _ in own}
    weight = tensors.get("weight")
    if weight is None or set(tensors) - {"weight", "bias"} or weight.dim() == 0:
        return None
    weight_start = starts[f"{prefix}weight"]
    if weight_start is None or weight_start["name"] not in ("ones", "zeros", "constant"):
        return None
    shape = list(weight.shape)
    if "bias" not in tensors:
        layer = {"type": "rms_norm", "name": name, "normalized_shape": shape}
    else:
        bias_start = starts[f"{prefix}bias"]
        if list(tensors["bias"].shape) != shape or bias_start is None or bias_start[
            "name"
        ] not in ("ones", "zeros", "constant"):
            return None
        layer = {"type": "layer_norm", "name": name, "normalized_shape": shape}
        if bias_start["name"] != "zeros":
            layer["bias_init"] = bias_start
    if weight_start["name"] != "ones":
        layer["weight_init"] = weight_start
    return layer


def _transposed_linear_fans(child: Any) -> tuple[int, int] | None:
    """(fan_in, fan_out) of a linear stored transposed, weight (in, out): transformers'
    ``Conv1D`` (GPT-2's projections), which records ``nx`` (in) and ``nf`` (out)."""
    weight = dict(child.named_parameters(recurse=False)).get("weight")
    nx, nf = getattr(child, "nx", None), getattr(child, "nf", None)
    if weight is None or not isinstance(nx, int) or not isinstance(nf, int):
        return None
    return (nx, nf) if tuple(weight.shape) == (nx, nf) else None


def _check_matches(module: Any, spec: dict[str, Any], aliases: dict[str, str]) -> None:
    """The spec's tensors must be the state_dict's keys (less aliases) with their shapes:
    what makes ``load_weights(..., strict=True)`` succeed."""
    from weightinit.core import Spec, build_plan
    from weightinit.core.plan import Limits

    plan = build_plan(Spec.model_validate(spec), Limits(max_tensors=1 << 40,
                                                        max_parameters=1 << 62))
    planned = {o.name: tuple(o.shape) for o in plan.outputs}
    wanted = {name: tuple(t.shape) for name, t, _ in state_tensors(module, "")
              if name not in aliases}
    if planned != wanted:
        differing = sorted(set(planned.items()) ^ set(wanted.items()))[:8]
        raise RuntimeError(f"spec and state_dict disagree (a weightinit bug): {differing}")


def as_torch(value: Any) -> Any:
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


def spec_from_module(module: Any, seed: int, **options: Any) -> dict[str, Any]:
    """Deprecated name of ``spec_from_model`` (the verb every adapter shares); removed in
    the next release."""
    warnings.warn("spec_from_module is deprecated: use spec_from_model", DeprecationWarning,
                  stacklevel=2)
    return spec_from_model(module, seed, **options)
