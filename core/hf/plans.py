"""A ``huggingface`` source as the plan's tensors: traced rules resolved per tensor."""

from __future__ import annotations

from typing import Any

from weightinit.core.conventions import TORCH
from weightinit.core.errors import SpecError
from weightinit.core.hf.families import check_raw_config, check_size
from weightinit.core.hf.source import HuggingFaceSource
from weightinit.core.hf.trace_process import trace
from weightinit.core.hf.traced import TracedModel, TracedTensor
from weightinit.core.initializers import InitContext, ResolveError, resolve
from weightinit.core.layers.base import TensorPlan
from weightinit.core.layers.tensors import with_override_stats

SOURCE_LOC = ("huggingface",)


def huggingface_plans(source: HuggingFaceSource, dtype: str, max_tensors: int,
                      max_parameters: int, trace_seconds: float
                      ) -> tuple[list[TensorPlan], dict[str, Any]]:
    """Every tensor ``save_pretrained`` would write for the source's model, in state-dict
    order, with the distribution its recipe gives it, and the model's description
    (``model_description``). Raises ``SpecError``/``LimitError``, ``ExtraMissing``
    without transformers. The config is checked here from its numbers alone before the
    tracing worker builds anything (``core.hf.trace_process``)."""
    model_type = check_raw_config(source.config)
    check_size(model_type, source.config, max_tensors, max_parameters)
    traced = trace(source, max_tensors, max_parameters, trace_seconds)
    return [_plan(tensor, dtype) for tensor in traced.tensors], model_description(traced)


def model_description(traced: TracedModel) -> dict[str, Any]:
    """What the plan document says of a traced model beside its tensors: the family, the
    model class, and the ``generation_config.json`` object to write with the weights."""
    return {"model_type": traced.model_type, "architecture": traced.architecture,
            "generation_config": traced.generation_config}


def _plan(tensor: TracedTensor, dtype: str) -> TensorPlan:
    fans = TORCH.layout.fans(tensor.shape)
    try:
        resolved = resolve(tensor.rule.init, InitContext(tensor.shape, fans, TORCH))
    except ResolveError as error:
        raise SpecError(SOURCE_LOC, f"{tensor.name}: {error.msg}") from None
    plan = TensorPlan(
        name=tensor.name,
        layer=tensor.module,
        layer_type=tensor.module_type,
        role=tensor.name.rpartition(".")[2],
        shape=tensor.shape,
        dtype="int64" if tensor.integer else dtype,
        init=resolved,
        fans=fans,
        overrides=tensor.rule.overrides,
        loc=SOURCE_LOC,
    )
    return with_override_stats(plan)
