"""A traced model as data: the saved tensors and the rule of each, torch-free.

What the tracing worker (``core.hf.worker``) sends back to the planning process, and what
``core.hf.trace_process`` caches by the config's canonical hash: plain JSON both ways, so
the process that plans and generates never imports torch or transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter
from weightinit.core.initializers import InitializerParams
from weightinit.core.layers.base import Override

_PARAMS: TypeAdapter[Any] = TypeAdapter(InitializerParams)


@dataclass(frozen=True)
class TensorRule:
    """What a saved tensor gets: an initializer and constant overrides of flat ranges."""

    init: BaseModel
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class TracedTensor:
    """A tensor as ``save_pretrained`` writes it, with the rule that initializes it."""

    name: str
    module: str
    module_type: str
    shape: tuple[int, ...]
    integer: bool
    rule: TensorRule


@dataclass(frozen=True)
class TracedModel:
    """A traced config: its family, model class and saved tensors in state-dict order,
    and the ``generation_config.json`` object ``save_pretrained`` writes beside them
    (None for a class that cannot generate), so that writing a directory needs no
    transformers where the weights are written."""

    model_type: str
    architecture: str
    tensors: tuple[TracedTensor, ...]
    generation_config: dict[str, Any] | None = None


def model_to_json(model: TracedModel) -> dict[str, Any]:
    """The JSON-able description of a traced model (floats round-trip exactly)."""
    return {
        "model_type": model.model_type,
        "architecture": model.architecture,
        "generation_config": model.generation_config,
        "tensors": [
            {"name": t.name, "module": t.module, "module_type": t.module_type,
             "shape": list(t.shape), "integer": t.integer,
             "init": t.rule.init.model_dump(mode="json", exclude_unset=True),
             "overrides": [[o.start, o.stop, o.value] for o in t.rule.overrides]}
            for t in model.tensors
        ],
    }


def model_from_json(document: dict[str, Any]) -> TracedModel:
    """The traced model of ``model_to_json``'s output."""
    tensors = tuple(
        TracedTensor(
            entry["name"], entry["module"], entry["module_type"],
            tuple(int(s) for s in entry["shape"]), bool(entry["integer"]),
            TensorRule(_PARAMS.validate_python(entry["init"]),
                       tuple(Override(int(a), int(b), float(v))
                             for a, b, v in entry["overrides"])),
        )
        for entry in document["tensors"]
    )
    return TracedModel(document["model_type"], document["architecture"], tensors,
                       document.get("generation_config"))
