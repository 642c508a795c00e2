"""Small helpers shared by the engine tests: build a one-tensor spec, generate a plan."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from weightinit.core import ChunkStream, Plan, Spec, build_plan
from weightinit.core.initializers import ResolvedInit


def spec_of(layers: list[dict[str, Any]], **fields: Any) -> Spec:
    """A validated spec with these layers (seed 1234, torch, float32 unless given)."""
    body: dict[str, Any] = {"seed": 1234, "convention": "torch", "dtype": "float32"}
    body.update(fields)
    body["layers"] = layers
    return Spec.model_validate(body)


def tensor_layer(name: str, shape: list[int], init: Any, **extra: Any) -> dict[str, Any]:
    """A ``tensor`` layer (the escape hatch: explicit shape and initializer)."""
    return {"type": "tensor", "name": name, "shape": shape, "init": init, **extra}


def generate(plan: Plan, **stream_options: Any) -> dict[str, np.ndarray]:
    """Every output tensor of the plan, by name, in its output shape and dtype."""
    pieces: dict[str, list[np.ndarray]] = {}
    for chunk in ChunkStream(plan, **stream_options):
        pieces.setdefault(chunk.output.name, []).append(chunk.data)
    out = {}
    for output in plan.outputs:
        parts = pieces.get(output.name, [])
        flat = np.concatenate(parts) if parts else np.empty(0)
        assert flat.size == math.prod(output.shape)
        out[output.name] = flat.reshape(output.shape)
    return out


def one_tensor(
    init: Any,
    shape: list[int],
    *,
    convention: str = "torch",
    dtype: str = "float64",
    seed: int = 1234,
    **extra: Any,
) -> tuple[np.ndarray, ResolvedInit]:
    """Values and resolved initializer of a single ``tensor`` layer named ``t``."""
    spec = spec_of(
        [tensor_layer("t", shape, init, **extra)], seed=seed, convention=convention, dtype=dtype
    )
    plan = build_plan(spec)
    return generate(plan)["t"], plan.outputs[0].plan.init
