"""From a validated spec to the plan: every tensor, its slice, sizes and expectations.

Nothing is generated here, so planning is instant and everything that can be wrong with a
request (names, fans, limits, select and its regions, shard) is found before the first byte is sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from weightinit.core.conventions import KERAS, TORCH, Convention, convention_of
from weightinit.core.dtypes import ITEMSIZE
from weightinit.core.errors import LimitError, Loc, SpecError
from weightinit.core.hf.source import HuggingFaceSource
from weightinit.core.keras.importer import import_keras_model
from weightinit.core.layers import Expansion, TensorPlan
from weightinit.core.layers.base import TensorBudget
from weightinit.core.layers.generic import Repeat
from weightinit.core.regions import Runs
from weightinit.core.safetensors_io.header import MAX_HEADER_BYTES
from weightinit.core.spec import Region, Shard, Spec


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; the service fills these from its settings."""

    max_tensors: int = 100_000
    max_parameters: int = 20_000_000_000
    max_depth: int = 8
    max_name_bytes: int = 1024
    max_whole_tensor_elements: int = 1 << 25
    hf_trace_seconds: float = 120.0  # building a huggingface config's model to trace it


@dataclass(frozen=True)
class OutputTensor:
    """A tensor as it appears in the file: its plan, output shape, the region of the full
    tensor it holds (``runs``) and its byte offset in the data section."""

    plan: TensorPlan
    shape: tuple[int, ...]
    runs: Runs
    offset: int

    @property
    def partial(self) -> bool:
        """True when the file holds a region smaller than the whole tensor."""
        return not self.runs.whole

    @property
    def region_offset(self) -> tuple[int, ...]:
        """Where the region starts in the full tensor (zeros for the whole tensor)."""
        return self.runs.offset

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * ITEMSIZE[self.plan.dtype]

    @property
    def name(self) -> str:
        return self.plan.name


@dataclass
class Plan:
    """The resolved request: tensors in file order, with totals and identity."""

    spec: Spec
    outputs: list[OutputTensor]
    spec_sha256: str
    warnings: list[str] = field(default_factory=list)
    # A huggingface source's family, model class and generation config (core.hf.plans).
    huggingface: dict[str, Any] | None = None

    @property
    def total_parameters(self) -> int:
        return sum(t.numel for t in self.outputs)

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.outputs)


# What every tensor adds to the safetensors header besides its name (twice: its entry and
# its expected statistics) and its layer's path: at least this many bytes of JSON.
HEADER_BYTES_PER_TENSOR = 128


def _count_tensors(layers: list[Any], ctx: Expansion) -> tuple[int, int, int]:
    """(tensors, parameters, a lower bound of their safetensors header bytes) of some layers
    without expanding repeats: limits come first."""
    tensors = parameters = header = 0
    for position, layer in enumerate(layers):
        child = ctx.child("", ("layers", position))
        if isinstance(layer, Repeat):
            limit = int(ctx.extras["max_depth"])
            if child.depth >= limit:
                raise SpecError((*child.loc, "layers"), f"repeat nesting deeper than {limit}")
            inner_tensors, inner_params, inner_header = _count_tensors(layer.layers, child)
            tensors += layer.count * inner_tensors
            parameters += layer.count * inner_params
            # Each copy prefixes names and layer paths with "name.i." / "name_i/".
            prefix = len(layer.name.encode()) + 3
            header += layer.count * (inner_header + 3 * prefix * inner_tensors)
        else:
            plans = layer.expand(child)
            tensors += len(plans)
            parameters += sum(math.prod(p.shape) for p in plans)
            header += sum(2 * len(p.name.encode()) + len(p.layer.encode())
                          + HEADER_BYTES_PER_TENSOR for p in plans)
    return tensors, parameters, header


def _check_totals(tensors: int, parameters: int, loc: Loc, limits: Limits,
                  header_bytes: int = 0) -> None:
    if tensors > limits.max_tensors:
        raise LimitError(loc, f"{tensors} tensors, more than the limit {limits.max_tensors}")
    if parameters > limits.max_parameters:
        raise LimitError(
            loc, f"{parameters} parameters, more than the limit {limits.max_parameters}"
        )
    if header_bytes > MAX_HEADER_BYTES:  # long names: refused before they are all made
        raise LimitError(loc, f"the safetensors header would take over {header_bytes} "
                         f"bytes, more than the limit {MAX_HEADER_BYTES}")


def _require(spec: Spec, convention: Convention, msg: str) -> None:
    """A model source that comes out in one convention refuses the spec's other one."""
    if convention_of(spec.convention) is not convention:
        raise SpecError(("convention",), msg)


def _keras_model_plans(spec: Spec, limits: Limits, warnings: list[str]) -> list[TensorPlan]:
    """The tensors of a ``keras_model`` (``core.keras_import``), checked against the limits."""
    _require(spec, KERAS, "a keras_model comes out with Keras layouts and weight paths: "
             "set convention to 'keras'")
    plans = import_keras_model(spec.keras_model or {}, spec.dtype, limits.max_depth, warnings)
    _check_totals(len(plans), sum(math.prod(p.shape) for p in plans), ("keras_model",), limits)
    return plans


def _huggingface_plans(spec: Spec, source: HuggingFaceSource, limits: Limits
                       ) -> tuple[list[TensorPlan], dict[str, Any]]:
    """The tensors of a ``huggingface`` config (``core.hf``), checked against the limits,
    and the model's description for the plan document."""
    from weightinit.core.hf.plans import huggingface_plans

    _require(spec, TORCH, "a huggingface model comes out as save_pretrained writes it, "
             "with torch names and layouts: set convention to 'torch'")
    plans, description = huggingface_plans(source, spec.dtype, limits.max_tensors,
                                           limits.max_parameters, limits.hf_trace_seconds)
    _check_totals(len(plans), sum(math.prod(p.shape) for p in plans), ("huggingface",), limits)
    return plans, description


def expand(spec: Spec, limits: Limits, warnings: list[str] | None = None
           ) -> tuple[list[TensorPlan], dict[str, Any] | None]:
    """All tensors of the spec's model, in spec order, checked against the limits
    (warnings, such as ignored Keras initializer seeds, are appended to ``warnings``),
    and for a ``huggingface`` source the model's description (else None)."""
    description = None
    if spec.huggingface is not None:
        plans, description = _huggingface_plans(spec, spec.huggingface, limits)
    elif spec.keras_model is not None:
        plans = _keras_model_plans(spec, limits, [] if warnings is None else warnings)
    else:
        root = Expansion(
            convention_of(spec.convention), spec.dtype, depth=-1,
            extras={"max_depth": limits.max_depth}, resolved={},
        )
        # Counting plans each layer once (a repeat's layers once, not once per copy):
        # more tensors than the limit there already means too many.
        counting = replace(root, budget=TensorBudget(limits.max_tensors, ("layers",)))
        tensors, parameters, header = _count_tensors(spec.layers or [], counting)
        _check_totals(tensors, parameters, ("layers",), limits, header)
        plans = []
        for position, layer in enumerate(spec.layers or []):
            plans.extend(layer.expand(root.child("", ("layers", position))))
    _check_names(plans, limits)
    _check_whole_tensors(plans, limits)
    return plans, description


def initializer_warnings(plans: list[TensorPlan]) -> list[str]:
    """What the frameworks would warn about these tensors' initializers: each message once,
    with the first tensor it concerns and how many more."""
    by_message: dict[str, list[str]] = {}
    for plan in plans:
        for note in plan.init.warnings:
            by_message.setdefault(note, []).append(plan.name)
    return [
        f"{names[0]}{f' (and {len(names) - 1} more)' if len(names) > 1 else ''}: {note}"
        for note, names in by_message.items()
    ]


def _check_names(plans: list[TensorPlan], limits: Limits) -> None:
    """Tensor names must be unique, not the header's reserved key, and not too long."""
    seen: dict[str, TensorPlan] = {}
    for plan in plans:
        if plan.name in seen:
            raise SpecError((*plan.loc[:-1], "name"), f"duplicate tensor name {plan.name!r}")
        if plan.name == "__metadata__":
            raise SpecError((*plan.loc[:-1], "name"), "'__metadata__' is reserved")
        if len(plan.name.encode()) > limits.max_name_bytes:
            raise LimitError((*plan.loc[:-1], "name"), "tensor name too long")
        seen[plan.name] = plan


def _check_whole_tensors(plans: list[TensorPlan], limits: Limits) -> None:
    """Refuse matrix initializers (orthogonal, sparse) on tensors too large to materialise."""
    for plan in plans:
        if not plan.init.sampler.whole_tensor:
            continue
        numel = math.prod(plan.shape)
        if numel > limits.max_whole_tensor_elements:
            raise LimitError(
                plan.loc,
                f"{plan.init.config['name']} materialises the whole tensor; {plan.name} has "
                f"{numel} elements, over {limits.max_whole_tensor_elements}",
            )


def _shard_region(plan: TensorPlan, shard: Shard) -> Runs:
    """``shard`` as a region: equal parts along ``dim`` (whole if the tensor lacks it)."""
    shape = plan.shape
    if shard.dim >= len(shape):
        # A shard's dim beyond the tensor's axes (a bias under dim=1, a scalar counter):
        # every rank gets it whole, as tensor-parallel frameworks replicate row-parallel biases.
        return Runs.of(shape)
    if shape[shard.dim] % shard.world_size:
        raise SpecError(
            ("shard", "world_size"),
            f"{plan.name}: dim {shard.dim} of size {shape[shard.dim]} does not divide "
            f"into {shard.world_size} equal parts",
        )
    part = shape[shard.dim] // shard.world_size
    offset = [0] * len(shape)
    offset[shard.dim] = shard.rank * part
    return Runs.of(shape, tuple(offset), (*shape[: shard.dim], part, *shape[shard.dim + 1 :]))


def _region_runs(plan: TensorPlan, item: Region, index: int) -> Runs:
    """The runs of a ``select`` region, checked against the tensor (422s name the field)."""
    full = plan.shape
    if item.offset is None or item.shape is None:
        return Runs.of(full)
    for key, values in (("offset", item.offset), ("shape", item.shape)):
        if len(values) != len(full):
            raise SpecError(("select", index, key),
                            f"{plan.name} has {len(full)} dims {list(full)}; {key} has "
                            f"{len(values)}")
    for dim, (start, size, whole) in enumerate(zip(item.offset, item.shape, full,
                                                   strict=True)):
        if start >= whole:
            raise SpecError(("select", index, "offset", dim),
                            f"{plan.name}: offset {start} is outside dim {dim} of size {whole}")
        if start + size > whole:
            raise SpecError(("select", index, "shape", dim),
                            f"{plan.name}: offset {start} + shape {size} runs past dim {dim} "
                            f"of size {whole}")
    return Runs.of(full, tuple(item.offset), tuple(item.shape))


def _select(plans: list[TensorPlan], select: list[Region] | None,
            shard: Shard | None) -> list[tuple[TensorPlan, Runs]]:
    """The selected tensors in spec order, each with the region of it the file holds."""
    if select is None:
        chosen = {p.name: None for p in plans}
    else:
        by_name = {p.name: p for p in plans}
        chosen = {}
        for index, item in enumerate(select):
            plan = by_name.get(item.name)
            if plan is None:
                raise SpecError(("select", index),
                                f"no tensor named {item.name!r} in this model")
            if item.is_region and shard is not None:
                raise SpecError(("shard",), "shard splits whole tensors: give regions or "
                                "shard, not both")
            if item.name in chosen and (item.is_region or chosen[item.name] is not None):
                raise SpecError(("select", index), f"{item.name!r} is selected twice")
            chosen[item.name] = _region_runs(plan, item, index) if item.is_region else None
    selected = []
    for plan in plans:
        if plan.name not in chosen:
            continue
        runs = chosen[plan.name]
        if runs is None:
            runs = _shard_region(plan, shard) if shard is not None else Runs.of(plan.shape)
        selected.append((plan, runs))
    return selected


def build_plan(spec: Spec, limits: Limits | None = None) -> Plan:
    """Resolve a spec into the file it describes (raises ``SpecError``/``LimitError``)."""
    limits = limits or Limits()
    if spec.shard is not None and spec.shard.rank >= spec.shard.world_size:
        raise SpecError(
            ("shard", "rank"),
            f"rank {spec.shard.rank} is out of range for world_size {spec.shard.world_size}",
        )
    warnings: list[str] = []
    plans, description = expand(spec, limits, warnings)
    selected = _select(plans, spec.select, spec.shard)
    warnings.extend(initializer_warnings([plan for plan, _ in selected]))
    # Widest dtype first (stable, so spec order within a dtype): every tensor then starts
    # at a multiple of its element size, as the official safetensors writer arranges.
    ordered = sorted(selected, key=lambda chosen: -ITEMSIZE[chosen[0].dtype])
    outputs = []
    offset = 0
    for plan, runs in ordered:
        output = OutputTensor(plan, runs.shape, runs, offset)
        outputs.append(output)
        offset += output.nbytes
    return Plan(spec, outputs, spec.spec_sha256(), warnings, description)
