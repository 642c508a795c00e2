"""Keras 3 helpers, with the torch adapter's verbs: a spec from a model, weights loaded.

    from weightinit.keras import load_weights, spec_from_model

    spec = spec_from_model(model, seed=1234)   # {"keras_model": model.to_json(), ...}
    load_weights(model, client.init(spec))     # every weight, nothing extra

Tensors from a ``keras_model`` request are named by the weight paths of the model rebuilt
from its JSON (``dense/kernel``). The same model built in Python may carry extra leading
components: the model's name (``seq/dense/kernel`` for a Sequential with ``keras.Input``
in its list), a nested model's or a wrapper's name (``rnn/bidirectional/forward_lstm/...``
where the rebuilt model has ``forward_lstm/...``). A variable therefore takes the tensor
whose name is the longest whole-component suffix of its path (or of which its path is
one), and every match must be one to one. keras is imported only by the caller.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from weightinit.service.adapters.weights_source import (
    LoadResult,
    WeightsSource,
    incompatible_message,
    source_path,
)


def spec_from_model(model: Any, seed: int, *, dtype: str | None = None) -> dict[str, Any]:
    """A keras-convention spec carrying the model's ``to_json()``: the server derives the
    tensors and each layer's own initializers from it."""
    spec: dict[str, Any] = {"seed": seed, "convention": "keras",
                            "keras_model": json.loads(model.to_json())}
    if dtype is not None:
        spec["dtype"] = dtype
    return spec


def _components(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


def _shared_suffix(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Components the shorter path shares with the end of the longer one, if all of it."""
    shorter, longer = (a, b) if len(a) <= len(b) else (b, a)
    return len(shorter) if longer[len(longer) - len(shorter):] == shorter else 0


def match_paths(variable_paths: list[str], tensor_names: list[str],
                model_name: str | None = None) -> tuple[dict[str, str], list[str], list[str]]:
    """``({variable path: tensor name}, unmatched paths, unused tensor names)``: each path
    takes the tensor sharing its longest whole-component suffix (a leading model name is
    dropped from both sides first). Ambiguous matches (two tensors equally good for one
    path, or one tensor for two paths) are left unmatched."""

    def normal(path: str) -> tuple[str, ...]:
        parts = _components(path)
        return parts[1:] if model_name and len(parts) > 1 and parts[0] == model_name else parts

    tensors = {name: normal(name) for name in tensor_names}
    by_exact = {parts: name for name, parts in tensors.items()}
    matches: dict[str, str] = {}
    for path in variable_paths:
        parts = normal(path)
        if parts in by_exact:
            matches[path] = by_exact[parts]
            continue
        scored = sorted(((_shared_suffix(parts, t), name) for name, t in tensors.items()),
                        reverse=True)
        if scored and scored[0][0] >= 2 and (len(scored) == 1 or scored[1][0] < scored[0][0]):
            matches[path] = scored[0][1]
    claimed: dict[str, list[str]] = {}
    for path, name in matches.items():
        claimed.setdefault(name, []).append(path)
    matches = {path: name for path, name in matches.items() if len(claimed[name]) == 1}
    used = set(matches.values())
    unmatched = [p for p in variable_paths if p not in matches]
    unused = [n for n in tensor_names if n not in used]
    return matches, unmatched, unused


def _as_numpy(value: Any) -> np.ndarray:
    """A numpy array in a dtype every backend takes (bfloat16 widened to float32: exact)."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    array = np.asarray(value)
    return array.astype(np.float32) if array.dtype.name == "bfloat16" else array


def _numpy_arrays(source: WeightsSource) -> Mapping[str, Any]:
    path = source_path(source)
    if path is None:
        assert isinstance(source, Mapping)
        return source
    import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy for the loader)
    from safetensors.numpy import load_file

    return load_file(path)


def _assign(model: Any, source: WeightsSource, strict: bool
            ) -> tuple[dict[str, str], LoadResult]:
    """Match, check (before assigning anything), assign; the matching and what is left."""
    tensors = _numpy_arrays(source)
    variables = {variable.path: variable for variable in model.weights}
    matches, unmatched, unused = match_paths(list(variables), list(tensors), model.name)
    result = LoadResult(unmatched, unused)
    if strict and (unmatched or unused):
        raise ValueError(f"load_weights into {model.name}: {incompatible_message(result)}")
    values = {}
    for path, name in matches.items():
        value = _as_numpy(tensors[name])
        if tuple(value.shape) != tuple(variables[path].shape):
            raise ValueError(f"{path}: tensor {name} has shape {tuple(value.shape)}, the "
                             f"weight {tuple(variables[path].shape)}")
        values[path] = value
    for path, value in values.items():
        variables[path].assign(value)
    return matches, result


def load_weights(model: Any, source: WeightsSource, *, strict: bool = True) -> LoadResult:
    """Assign weights to ``model.weights`` by path, with or without the model-name prefix.

    Args:
        model: a built Keras 3 model.
        source: a safetensors path, a mapping of name -> array, or what ``Client.init``
            returned.
        strict: every weight must get a tensor and every tensor a weight, else
            ``ValueError`` naming them, before anything is assigned.

    Returns:
        ``LoadResult(missing_keys, unexpected_keys)``: weight paths without a tensor,
        tensor names without a weight.
    """
    return _assign(model, source, strict)[1]


def assign_into(model: Any, tensors: WeightsSource, *, strict: bool = True) -> dict[str, str]:
    """Deprecated name of ``load_weights`` (the verb every adapter shares); returns the
    matching used ({variable path: tensor name}). Removed in the next release."""
    warnings.warn("assign_into is deprecated: use load_weights", DeprecationWarning,
                  stacklevel=2)
    return _assign(model, tensors, strict)[0]
