"""Trace a Hugging Face config into the tensors ``save_pretrained`` writes and their rules.

Runs in the tracing worker (``core.hf.worker``), never in the process that plans and
generates: it imports torch and transformers. The model class comes only from the
installed transformers: the config's ``model_type`` through ``AutoConfig.for_model`` and
the architecture through transformers' own auto mappings for that model type (never a
name imported from the request). It is built on the meta device, as ``from_config``
builds it but with no memory for weights, under ``core.hf.recorder``; then, for the
``family`` recipe, the model's own ``initialize_weights`` (its ``_init_weights`` for every
module) runs with the init functions recording instead of drawing, and the weights are
tied as ``from_config`` ties them. The saved tensors are the state dict without the tied
aliases, computed with transformers' own ``remove_tied_weights_from_state_dict``.
"""

from __future__ import annotations

import json
from typing import Any

from weightinit.core.errors import SpecError
from weightinit.core.hf.errors import HF_EXTRA_MESSAGE, ExtraMissing
from weightinit.core.hf.families import (
    CONFIG_LOC,
    check_raw_config,
    check_size,
    unsupported_family_message,
)
from weightinit.core.hf.rules import rule_for
from weightinit.core.hf.traced import TracedModel, TracedTensor

# Config keys that only say how to run or store the model, not what it is: a request
# cannot use them to pick attention kernels (which may be fetched) or a dtype to trace in.
_RUNTIME_KEYS = ("attn_implementation", "_attn_implementation", "experts_implementation",
                 "_experts_implementation", "torch_dtype", "dtype", "_name_or_path",
                 "transformers_version", "use_kernels")


def require_transformers() -> None:
    """Raise ``ExtraMissing`` unless torch and transformers can be imported."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise ExtraMissing(("huggingface",), HF_EXTRA_MESSAGE) from None


def build_config(config: dict[str, Any]) -> Any:
    """The transformers config object of a request's config (defaults filled in)."""
    require_transformers()
    from transformers import AutoConfig

    kwargs = {k: v for k, v in config.items() if k not in ("model_type", *_RUNTIME_KEYS)}
    try:
        built = AutoConfig.for_model(config["model_type"], **kwargs,
                                     attn_implementation="eager")
    except Exception as error:  # any refusal of the config class is bad input
        raise SpecError(CONFIG_LOC, f"transformers refuses this config: {error}") from None
    return built


def architectures_of(model_type: str) -> list[str]:
    """The model classes transformers' auto mappings list for a model type."""
    from transformers.models.auto import modeling_auto

    names: list[str] = []
    for attribute in dir(modeling_auto):
        if not (attribute.startswith("MODEL") and attribute.endswith("_MAPPING_NAMES")):
            continue
        mapping = getattr(modeling_auto, attribute)
        value = mapping.get(model_type) if isinstance(mapping, dict) else None
        for name in (value,) if isinstance(value, str) else (value or ()):
            if isinstance(name, str) and name not in names:
                names.append(name)
    return names


def default_architecture(model_type: str, config: dict[str, Any]) -> str:
    """``config["architectures"][0]`` when given, else the family's base model class."""
    given = config.get("architectures")
    if isinstance(given, list) and given and isinstance(given[0], str):
        return given[0]
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    base = MODEL_MAPPING_NAMES.get(model_type)
    return base if isinstance(base, str) else base[0]


def model_class(model_type: str, architecture: str) -> Any:
    """The transformers class named ``architecture``, if it is one of the family's."""
    import transformers

    allowed = architectures_of(model_type)
    if architecture not in allowed:
        raise SpecError(("huggingface", "architecture"),
                        f"{architecture!r} is not a {model_type} model class of the installed "
                        f"transformers; choose one of {', '.join(allowed)}")
    return getattr(transformers, architecture)


def trace_source(config: dict[str, Any], architecture: str | None, recipe: str,
                 max_tensors: int, max_parameters: int) -> TracedModel:
    """The traced model of a request's ``huggingface`` source: the config checked (raw,
    then with transformers' defaults filled in) before any module is built."""
    model_type = check_raw_config(config)
    check_size(model_type, config, max_tensors, max_parameters)
    built = build_config(config)
    check_size(model_type, built.to_dict(), max_tensors, max_parameters)
    architecture = architecture or default_architecture(model_type, config)
    return _trace(built, model_type, architecture, recipe)


def _trace(config: Any, model_type: str, architecture: str, recipe: str) -> TracedModel:
    import torch
    from transformers import initialization
    from transformers.modeling_utils import remove_tied_weights_from_state_dict
    from weightinit.core.hf.recorder import Recorder, flat_range_of, patched_init_table

    if model_type != getattr(config, "model_type", None):
        raise SpecError((*CONFIG_LOC, "model_type"), unsupported_family_message(model_type))
    cls = model_class(model_type, architecture)
    recorder = Recorder()
    try:
        with patched_init_table(recorder), initialization.no_tie_weights(), torch.no_grad():
            # The device context innermost: transformers sees it and skips its own init.
            with recorder, torch.device("meta"):
                model = cls(config)
            recorder.stage = "init"
            if recipe == "family":
                with recorder:
                    model.initialize_weights()
        recorder.stage = "tie"
        with recorder, torch.no_grad():  # as init_weights ties after initializing
            model.tie_weights(recompute_mapping=False)
    except Exception as error:  # transformers' own refusal of this config: bad input
        raise SpecError(CONFIG_LOC, f"transformers cannot build {architecture} from this "
                        f"config: {type(error).__name__}: {error}") from None
    state = model.state_dict(keep_vars=True)
    for ignored in getattr(model, "_keys_to_ignore_on_save", None) or ():
        state.pop(ignored, None)
    saved = remove_tied_weights_from_state_dict(dict(state), model)
    tensors = []
    for name, saved_name in _saved_names(model, {name: state[name] for name in saved}).items():
        tensor = state[name]
        storage, first = flat_range_of(tensor)
        if not tensor.is_contiguous():
            raise SpecError(("huggingface",), f"{name}: a non-contiguous tensor is not supported")
        events = [_relative(event, first) for event in recorder.events.get(storage, ())]
        shape = tuple(int(s) for s in tensor.shape)
        module, _, _ = name.rpartition(".")
        owner = model.get_submodule(module) if module else model
        integer = not tensor.is_floating_point()
        tensors.append(TracedTensor(saved_name, module, type(owner).__name__, shape, integer,
                                    rule_for(saved_name, shape, events)))
    return TracedModel(model_type, architecture, tuple(tensors), _generation_config(model))


def _generation_config(model: Any) -> dict[str, Any] | None:
    """What ``save_pretrained`` writes as ``generation_config.json`` for this model (the
    file's JSON object, ``transformers_version`` included), or None when it writes none."""
    if not model.can_generate():
        return None
    from transformers import GenerationConfig

    text = GenerationConfig.from_model_config(model.config).to_json_string(use_diff=True)
    document: dict[str, Any] = json.loads(text)
    return document


def _saved_names(model: Any, state: dict[str, Any]) -> dict[str, str]:
    """State-dict name -> the name ``save_pretrained`` writes it under: transformers
    reverts its load-time renamings when saving (GPT-NeoX's ``lm_head`` is saved as
    ``embed_out``). A conversion that changes values (merged or split tensors) is refused."""
    from transformers.core_model_loading import revert_weight_conversion

    reverted = revert_weight_conversion(model, dict(state))
    by_id = {id(tensor): name for name, tensor in state.items()}
    names: dict[str, str] = {}
    for saved_name, tensor in reverted.items():
        original = by_id.get(id(tensor))
        if original is None:
            raise SpecError(("huggingface",), f"{saved_name}: transformers converts this tensor "
                            "when saving (merged or split), which weightinit does not trace")
        names[original] = saved_name
    if len(names) != len(state):
        raise SpecError(("huggingface",), "transformers' save-time conversion drops tensors")
    return {name: names[name] for name in state}


def _relative(event: Any, first: int) -> Any:
    """An event with its range relative to a tensor starting at ``first`` in its storage."""
    from dataclasses import replace

    return replace(event, start=event.start - first, stop=event.stop - first)
