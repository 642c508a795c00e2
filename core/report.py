"""The plan and report documents (JSON), as ``/v1/plan`` and ``/v1/report`` return them."""

from __future__ import annotations

import math
from typing import Any

from weightinit.core.generate import ChunkStream
from weightinit.core.plan import OutputTensor, Plan
from weightinit.core.safetensors_io.writer import (
    Observer,
    file_size,
    header_bytes,
    package_version,
    stream_bytes,
)


def tensor_entry(output: OutputTensor) -> dict[str, Any]:
    """One tensor of the plan: identity, resolved initializer, fans, expectations."""
    plan = output.plan
    entry: dict[str, Any] = {
        "name": plan.name,
        "layer": plan.layer,
        "layer_type": plan.layer_type,
        "role": plan.role,
        "shape": list(output.shape),
        "dtype": plan.dtype,
        "initializer": plan.init.config,
        "fan_in": plan.fans.fan_in,
        "fan_out": plan.fans.fan_out,
        "expected_mean": plan.init.expected_mean,
        "expected_variance": plan.init.expected_variance,
        **{key: value for key, value in plan.init.derived.items() if key not in ("low", "high")},
    }
    if output.partial:
        entry["full_shape"] = list(plan.shape)
        entry["offset"] = list(output.region_offset)
    if plan.overrides:
        entry["overrides"] = [
            {"start": o.start, "stop": o.stop, "value": o.value} for o in plan.overrides
        ]
    if plan.init.config["name"] == "orthogonal":
        entry["bitwise_portable"] = False
    return entry


def layer_groups(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tensors grouped by layer, in first-appearance order: count, parameters, names."""
    groups: dict[str, dict[str, Any]] = {}
    for entry in entries:
        group = groups.setdefault(
            entry["layer"],
            {
                "layer": entry["layer"],
                "type": entry["layer_type"],
                "tensor_count": 0,
                "tensors": [],
                "parameters": 0,
                "expected_variance": {},
            },
        )
        group["tensor_count"] += 1
        group["tensors"].append(entry["name"])
        group["expected_variance"][entry["name"]] = entry["expected_variance"]
        if "variance" in entry:
            group.setdefault("observed_variance", {})[entry["name"]] = entry["variance"]
        group["parameters"] += math.prod(entry["shape"])
    return list(groups.values())


def _tensor_entries(plan: Plan) -> list[dict[str, Any]]:
    """Every tensor's plan entry, in file order."""
    tensors = [tensor_entry(output) for output in plan.outputs]
    if plan.spec.shard is not None:
        for entry in tensors:  # tensors without the shard's dim go to every rank whole
            entry["replicated"] = "full_shape" not in entry
    return tensors


def _document(plan: Plan, tensors: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan document around these tensor entries (layers grouped from them)."""
    spec = plan.spec
    document = {
        "algorithm": spec.algorithm,
        "weightinit_version": package_version(),
        "seed": spec.seed,
        "convention": spec.convention,
        "spec_sha256": plan.spec_sha256,
        "select": spec.selection(),
        "shard": spec.shard.model_dump() if spec.shard else None,
        "tensors": tensors,
        "layers": layer_groups(tensors),
        "total_parameters": plan.total_parameters,
        "total_bytes": plan.total_bytes,
        "file_bytes": file_size(plan),
        "warnings": plan.warnings,
    }
    if plan.huggingface is not None:
        document["huggingface"] = plan.huggingface
    return document


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan: every tensor and the totals, nothing generated."""
    return _document(plan, _tensor_entries(plan))


def report_document(plan: Plan, observer: Observer) -> dict[str, Any]:
    """The plan plus what was observed: per tensor mean, variance, min, max, sha256."""
    tensors = _tensor_entries(plan)
    for entry in tensors:
        observed = observer.tensors[entry["name"]]
        entry.update(observed.moments.as_report())
        entry["sha256"] = observed.sha256.hexdigest()
    document = _document(plan, tensors)
    document["file_sha256"] = observer.file_sha256.hexdigest()
    return document


def generate_report(plan: Plan) -> dict[str, Any]:
    """Generate the whole file without keeping a byte and return its report (the CLI's
    ``weightinit report``, the OpenAPI examples)."""
    observer = Observer()
    for _ in stream_bytes(header_bytes(plan), iter(ChunkStream(plan, with_stats=True)),
                          observer):
        pass
    return report_document(plan, observer)
