"""From the init events recorded on a tensor to a weightinit initializer and row overrides.

The last write that covers the whole tensor decides its initializer; later writes to part
of it (the zeroed ``padding_idx`` row of an embedding) become ``Override`` ranges, which
must be constants. Every op maps to the registry initializer of the same semantics
(``normal_`` to ``normal``, ``trunc_normal_`` to ``truncated_normal`` with its absolute
bounds, ``kaiming_uniform_`` to ``kaiming_uniform``...); copied tables must be a
constant or the sinusoidal position table. Anything else is an error naming the tensor
and the op: weightinit never guesses a distribution.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, TypeAdapter, ValidationError
from weightinit.core.errors import SpecError
from weightinit.core.hf.recorder import Event
from weightinit.core.hf.traced import TensorRule
from weightinit.core.initializers import InitializerParams
from weightinit.core.layers.base import Override
from weightinit.core.rng.samplers import sinusoid_table

SOURCE_LOC = ("huggingface",)
_PARAMS: TypeAdapter[Any] = TypeAdapter(InitializerParams)


def _fail(name: str, msg: str) -> SpecError:
    return SpecError(SOURCE_LOC, f"{name}: {msg}")


def _as_params(name: str, config: dict[str, Any]) -> BaseModel:
    try:
        return _PARAMS.validate_python(config)
    except ValidationError as error:
        first = error.errors()[0]
        raise _fail(name, f"its initializer {config} is not valid here: {first['msg']}") from None


def _constant(value: float) -> dict[str, Any]:
    if value == 0.0:
        return {"name": "zeros"}
    if value == 1.0:
        return {"name": "ones"}
    return {"name": "constant", "value": float(value)}


def _table(name: str, values: np.ndarray | None, shape: tuple[int, ...]) -> dict[str, Any]:
    """A copied table: a constant, or the sinusoidal position table of this shape."""
    if values is None:
        raise _fail(name, "it is copied from a table too large to record")
    if values.size and bool(np.all(values == values[0])):
        return _constant(float(values[0]))
    if len(shape) == 2 and shape[1] % 2 == 0 and shape[1] >= 4:
        expected = sinusoid_table(shape[0], shape[1], 10000.0).reshape(-1)
        # transformers computes the table in float32 (the angle t * inv_timescale is
        # rounded, an error up to t * 2**-23 radians): allow that, and no more.
        tolerance = (shape[0] + 1) * 2.0**-21 + 2.0**-20
        if float(np.max(np.abs(expected - values), initial=0.0)) <= tolerance:
            return {"name": "sinusoidal", "max_timescale": 10000.0}
    raise _fail(name, "it is copied from a computed table that is neither a constant nor the "
                "sinusoidal position table; weightinit has no initializer for it")


def _event_config(name: str, event: Event, shape: tuple[int, ...]) -> dict[str, Any]:
    """The registry initializer of one whole-tensor event."""
    op, arg = event.op, event.arg
    if op == "normal":
        return {"name": "normal", "mean": float(arg("mean")), "std": float(arg("std"))}
    if op == "uniform":
        return {"name": "uniform", "low": float(arg("a")), "high": float(arg("b"))}
    if op == "trunc_normal":
        return {"name": "truncated_normal", "mean": float(arg("mean")), "std": float(arg("std")),
                "a": float(arg("a")), "b": float(arg("b"))}
    if op == "constant":
        return _constant(float(arg("val")))
    if op in ("ones", "zeros"):
        return {"name": op}
    if op in ("kaiming_uniform", "kaiming_normal"):
        return {"name": op, "a": float(arg("a")), "mode": arg("mode"),
                "nonlinearity": arg("nonlinearity")}
    if op in ("xavier_uniform", "xavier_normal", "orthogonal"):
        return {"name": op, "gain": float(arg("gain"))}
    if op == "eye":
        return {"name": "eye"}
    if op == "dirac":
        return {"name": "dirac", "groups": int(arg("groups"))}
    if op == "sparse":
        return {"name": "sparse", "sparsity": float(arg("sparsity")), "std": float(arg("std"))}
    if op == "values":
        return _table(name, event.values, shape)
    if op == "empty":
        raise _fail(name, "the model leaves it uninitialized (torch.empty with no init after)")
    what = op.removeprefix("unsupported:")
    raise _fail(name, f"it is initialized by {what}, which weightinit has no initializer for")


def _override_value(name: str, event: Event) -> float:
    """The constant a partial write sets (a padding row), or an error."""
    if event.op == "constant":
        return float(event.arg("val"))
    if event.op in ("zeros", "ones"):
        return 0.0 if event.op == "zeros" else 1.0
    if event.op == "values" and event.values is not None and event.values.size \
            and bool(np.all(event.values == event.values[0])):
        return float(event.values[0])
    raise _fail(name, f"part of it (elements {event.start}..{event.stop - 1}) is set by "
                f"{event.op.removeprefix('unsupported:')}; only constant rows are supported")


def rule_for(name: str, shape: tuple[int, ...], events: list[Event]) -> TensorRule:
    """The initializer and overrides a tensor ends with after its recorded ``events``
    (flat ranges relative to the tensor's first element)."""
    numel = math.prod(shape)
    whole: Event | None = None
    partial: list[Event] = []
    for event in events:
        start, stop = max(event.start, 0), min(event.stop, numel)
        if start >= stop:
            continue
        if start == 0 and stop == numel:
            whole, partial = event, []
            if event.values is not None and (event.start, event.stop) != (0, numel):
                whole = Event(event.op, event.args, 0, numel, event.stage,
                              event.values[-event.start : numel - event.start])
        else:
            partial.append(Event(event.op, event.args, start, stop, event.stage,
                                 None if event.values is None
                                 else event.values[start - event.start : stop - event.start]))
    if whole is None:
        raise _fail(name, "the installed transformers never initializes it")
    config = _event_config(name, whole, shape)
    overrides = [Override(e.start, e.stop, _override_value(name, e)) for e in partial]
    overrides = [o for o in overrides if not _redundant(o, config)]
    return TensorRule(_as_params(name, config), tuple(overrides))


def _redundant(override: Override, config: dict[str, Any]) -> bool:
    """An override that writes what a constant initializer already wrote."""
    value = {"zeros": 0.0, "ones": 1.0}.get(config["name"], config.get("value"))
    return config["name"] in ("zeros", "ones", "constant") and value == override.value
