"""Weights into a torch module: ``load_weights``, and ``empty_weights`` to build a model
whose parameters take no memory until the weights arrive.

    with empty_weights():                 # parameters on meta, buffers real
        model = LlamaForCausalLM(config)
    load_weights(model, client.init(spec_from_model(model, seed=1)))

A model built under ``torch.device("meta")`` has its buffers on meta too: the
non-persistent ones (rotary ``inv_freq``, ``position_ids``, ``token_type_ids``) are not
weights, so no weights file can fill them, and only the model's own code knows their
values. ``empty_weights`` (what accelerate's ``init_empty_weights(include_buffers=False)``
does) lets that code run: each parameter moves to meta as it is registered, buffers stay
where they were made. ``load_weights`` assigns the tensors into a meta model (no copy:
they become the parameters' storage, cast only when the dtype differs), ties shared
parameters again, and refuses, before changing anything, a load that would leave a
tensor on meta.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from weightinit.service.adapters.torch_helpers import as_torch, state_tensors, tied_names
from weightinit.service.adapters.torch_hf import checkpoint_names
from weightinit.service.adapters.weights_source import (
    LoadResult,
    WeightsSource,
    incompatible_message,
    source_path,
)

_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def empty_weights() -> Iterator[None]:
    """Build modules with their parameters on the meta device and their buffers real.

    Each parameter is made by the module's own code, then moved to meta as it is
    registered (a parameter already on meta, e.g. a tied one, is kept as it is, so ties
    survive); buffers (rotary ``inv_freq``, ``position_ids``) keep the values the
    model's code computed. ``nn.Module.register_parameter`` is patched for the duration
    of the block, for every thread: build one model at a time.
    """
    import torch
    from torch import nn

    with _PATCH_LOCK:
        original = nn.Module.register_parameter

        def register_on_meta(module: Any, name: str, param: Any) -> None:
            if param is not None and param.device.type != "meta":
                extra = dict(param.__dict__)
                extra["requires_grad"] = param.requires_grad
                param = type(param)(param.to(torch.device("meta")), **extra)
            original(module, name, param)

        nn.Module.register_parameter = register_on_meta  # type: ignore[method-assign]
        try:
            yield
        finally:
            nn.Module.register_parameter = original  # type: ignore[method-assign]


def _torch_tensors(source: WeightsSource) -> dict[str, Any]:
    """The source as {name: torch tensor}, sharing memory with arrays where it can."""
    path = source_path(source)
    if path is not None:
        from safetensors.torch import load_file

        return load_file(path)
    assert isinstance(source, Mapping)
    return {name: as_torch(value) for name, value in source.items()}


def current_names(model: Any) -> set[str]:
    """The model's ``state_dict`` names."""
    return {name for name, _, _ in state_tensors(model, "")}


def _meta_tensors(model: Any) -> list[str]:
    """Every parameter and buffer (non-persistent ones too) still on the meta device."""
    names = []
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        own = [*module.named_parameters(recurse=False, remove_duplicate=False),
               *module.named_buffers(recurse=False, remove_duplicate=False)]
        names.extend(prefix + local for local, tensor in own if tensor.is_meta)
    return names


def load_weights(model: Any, source: WeightsSource, *, strict: bool = True) -> LoadResult:
    """Load weights into a torch module by ``state_dict`` name.

    Args:
        model: the module; on any device, or built on meta (see ``empty_weights``).
        source: a safetensors path, a mapping of name -> array (numpy, bfloat16 from
            ml_dtypes, or torch), or what ``Client.init`` returned.
        strict: every ``state_dict`` key must get a tensor and every tensor a key, else
            ``RuntimeError`` naming them, before anything is loaded.

    Returns:
        ``LoadResult(missing_keys, unexpected_keys)``. Tied parameters (a tied
        ``lm_head.weight``) are filled from the name they alias and are not missing. A
        transformers model takes its ``save_pretrained`` names too (what the
        ``huggingface`` source writes), where its family renames weights on load.

    A module on meta gets the tensors assigned as its parameters (no copy; cast when the
    module's dtype differs) and its ties restored. A load that would leave a tensor on
    meta (a missing key, or a buffer only the model's code can make) is refused.
    """
    state = _torch_tensors(source)
    renames = checkpoint_names(model)
    if renames:  # a save_pretrained file (the huggingface source) of a renaming family
        own = current_names(model)
        state = {name if name in own else renames.get(name, name): value
                 for name, value in state.items()}
    aliases = tied_names(model)
    for alias, first in aliases.items():
        if alias not in state and first in state:
            state[alias] = state[first]
    current = {name: tensor for name, tensor, _ in state_tensors(model, "")}
    result = LoadResult([name for name in current if name not in state],
                        [name for name in state if name not in current])
    if strict and (result.missing_keys or result.unexpected_keys):
        raise RuntimeError(f"load_weights into {type(model).__name__}: "
                           f"{incompatible_message(result)}")
    mismatched = [f"{name}: tensor {tuple(state[name].shape)}, model {tuple(t.shape)}"
                  for name, t in current.items()
                  if name in state and tuple(state[name].shape) != tuple(t.shape)]
    if mismatched:
        raise RuntimeError(f"load_weights into {type(model).__name__}: shapes differ: "
                           f"{'; '.join(mismatched[:10])}")
    on_meta = [name for name in _meta_tensors(model) if name not in state]
    if on_meta:
        raise RuntimeError(
            f"these tensors are on the meta device and the weights do not hold them: "
            f"{', '.join(on_meta[:10])}{' ...' if len(on_meta) > 10 else ''}. Buffers the "
            "model computes itself (rotary inv_freq, position_ids) must be built by its "
            "code: build the model inside weightinit.torch.empty_weights() instead of "
            "torch.device('meta')"
        )
    assign = any(tensor.is_meta for tensor in current.values())
    wanted = {}
    for name, value in state.items():
        target = current.get(name)
        if target is None:
            continue
        if assign and value.dtype != target.dtype:
            value = value.to(target.dtype)
        wanted[name] = value
    model.load_state_dict(wanted, strict=False, assign=assign)
    if assign and aliases:
        _retie(model, aliases)
    return result


def _retie(module: Any, aliases: dict[str, str]) -> None:
    """After ``assign=True`` each name holds its own tensor: make aliases share again."""
    for alias, first in aliases.items():
        owner_name, _, attribute = alias.rpartition(".")
        source_name, _, source_attribute = first.rpartition(".")
        owner = module.get_submodule(owner_name)
        source = module.get_submodule(source_name)
        setattr(owner, attribute, getattr(source, source_attribute))


def load_into(module: Any, tensors: WeightsSource, *, strict: bool = True) -> LoadResult:
    """Deprecated name of ``load_weights`` (the verb every adapter shares); removed in the
    next release."""
    warnings.warn("load_into is deprecated: use load_weights", DeprecationWarning,
                  stacklevel=2)
    return load_weights(module, tensors, strict=strict)
