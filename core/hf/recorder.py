"""Record how a model's tensors are initialized, without computing them.

The model is built on the meta device (no memory for its weights) under ``Recorder``, a
torch function mode that sees every factory call (``torch.empty``, ``torch.ones``,
``torch.tensor``...), every ``torch.nn.init`` function that torch dispatches, and every
in-place tensor method (``normal_``, ``uniform_``, ``fill_``, ``zero_``, ``copy_``...).
transformers' own init helpers (``transformers.initialization``) call the original torch
functions through its ``TORCH_INIT_FUNCTIONS`` table, which ``patched_init_table``
replaces by recorders for the tracing thread only.

Each call becomes an ``Event`` on the storage it writes, with the element range written
(a padding row is a range inside the embedding's storage). Storages are told apart by
their ``_cdata`` (meta tensors have storages too, without memory), and every recorded
tensor is kept alive until the trace ends so no address is reused.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

# Values of tensors made from Python data or copied from CPU tables are kept up to this
# many elements; larger ones are recorded as unknown values (and refused if saved).
MAX_RECORDED_VALUES = 1 << 24
# torch.tensor(data) is made on the CPU (not meta) when its data is this small, so
# constants such as CLIP's logit_scale keep their value.
SMALL_DATA = 4096


@dataclass(frozen=True)
class Event:
    """One write to ``[start, stop)`` (flat elements) of a storage.

    ``op`` is an initializer-like name (``normal``, ``uniform``, ``constant``,
    ``trunc_normal``, ``kaiming_uniform``, ``xavier_uniform``, ``orthogonal``, ``values``
    for a copy of known values, ``empty`` for an uninitialized allocation) or
    ``unsupported:<what>``; ``args`` its parameters; ``values`` the data of a ``values``
    event, flat, float64.
    """

    op: str
    args: tuple[tuple[str, Any], ...]
    start: int
    stop: int
    stage: str
    values: np.ndarray | None = field(default=None, compare=False)

    def arg(self, name: str, default: Any = None) -> Any:
        return dict(self.args).get(name, default)


def _number(value: Any) -> Any:
    """A Python number from an init argument (a 0-d tensor included)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.device.type != "meta":
        return value.item()
    return value


def _storage_key(tensor: torch.Tensor) -> int:
    return int(tensor.untyped_storage()._cdata)


def _region(tensor: torch.Tensor) -> tuple[int, int] | None:
    """The flat element range a tensor covers in its storage, or None if it is not one
    contiguous range."""
    if not tensor.is_contiguous():
        return None
    start = tensor.storage_offset()
    return start, start + tensor.numel()


def _values(tensor: torch.Tensor) -> np.ndarray | None:
    """Flat float64 values of a CPU tensor (None for meta tensors or big ones)."""
    if tensor.device.type == "meta" or tensor.numel() > MAX_RECORDED_VALUES:
        return None
    return tensor.detach().to("cpu", torch.float64).contiguous().reshape(-1).numpy().copy()


# torch.nn.init functions (and transformers' table of them) to the event they record:
# their keyword parameters in order, with torch's defaults.
INIT_FUNCTIONS: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {
    "uniform_": ("uniform", (("a", 0.0), ("b", 1.0))),
    "normal_": ("normal", (("mean", 0.0), ("std", 1.0))),
    "trunc_normal_": ("trunc_normal", (("mean", 0.0), ("std", 1.0), ("a", -2.0), ("b", 2.0))),
    "constant_": ("constant", (("val", None),)),
    "ones_": ("ones", ()),
    "zeros_": ("zeros", ()),
    "eye_": ("eye", ()),
    "dirac_": ("dirac", (("groups", 1),)),
    "xavier_uniform_": ("xavier_uniform", (("gain", 1.0),)),
    "xavier_normal_": ("xavier_normal", (("gain", 1.0),)),
    "kaiming_uniform_": ("kaiming_uniform",
                         (("a", 0.0), ("mode", "fan_in"), ("nonlinearity", "leaky_relu"))),
    "kaiming_normal_": ("kaiming_normal",
                        (("a", 0.0), ("mode", "fan_in"), ("nonlinearity", "leaky_relu"))),
    "orthogonal_": ("orthogonal", (("gain", 1.0),)),
    "sparse_": ("sparse", (("sparsity", None), ("std", 0.01))),
}
_TORCH_INIT = {getattr(torch.nn.init, name): name for name in INIT_FUNCTIONS
               if hasattr(torch.nn.init, name)}

# In-place tensor methods and the event they record.
_METHODS: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], tuple[str, dict[str, Any]]]] = {
    "normal_": lambda a, k: ("normal", {"mean": _number(a[0] if a else k.get("mean", 0.0)),
                                        "std": _number(a[1] if len(a) > 1 else k.get("std", 1.0))}),
    "uniform_": lambda a, k: ("uniform", {"a": _number(a[0] if a else k.get("from", 0.0)),
                                          "b": _number(a[1] if len(a) > 1 else k.get("to", 1.0))}),
    "fill_": lambda a, k: ("constant", {"val": _number(a[0] if a else k.get("value"))}),
    "zero_": lambda a, k: ("zeros", {}),
}
# Factories and what a fresh tensor of theirs holds.
_FACTORIES: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], tuple[str, dict[str, Any]]]] = {
    "empty": lambda a, k: ("empty", {}),
    "empty_like": lambda a, k: ("empty", {}),
    "zeros": lambda a, k: ("zeros", {}),
    "zeros_like": lambda a, k: ("zeros", {}),
    "ones": lambda a, k: ("ones", {}),
    "ones_like": lambda a, k: ("ones", {}),
    "full": lambda a, k: ("constant",
                          {"val": _number(a[1] if len(a) > 1 else k.get("fill_value"))}),
    "full_like": lambda a, k: ("constant", {"val": _number(a[0] if a else k.get("fill_value"))}),
    "randn": lambda a, k: ("normal", {"mean": 0.0, "std": 1.0}),
    "randn_like": lambda a, k: ("normal", {"mean": 0.0, "std": 1.0}),
    "rand": lambda a, k: ("uniform", {"a": 0.0, "b": 1.0}),
    "rand_like": lambda a, k: ("uniform", {"a": 0.0, "b": 1.0}),
}
# In-place methods that change a tensor's flags, never its values.
_FLAGS_ONLY = frozenset({"requires_grad_", "share_memory_", "detach_"})
# Methods that make a new tensor with the same values (a dtype or device move, a copy).
_SAME_VALUES = {"clone", "contiguous", "to", "float", "double", "half", "bfloat16", "detach",
                "type", "cpu"}


def _small_data(data: Any) -> bool:
    """Python data with values worth keeping: a number or a short non-empty list.
    (``torch.tensor([])`` stays where the device context puts it: transformers probes
    the context's device with it.)"""
    if isinstance(data, (int, float, bool)):
        return True
    if isinstance(data, (list, tuple)) and data:
        count = 0
        stack = list(data)
        while stack:
            item = stack.pop()
            if isinstance(item, (list, tuple)):
                stack.extend(item)
            count += 1
            if count > SMALL_DATA:
                return False
        return True
    return False


class Recorder(TorchFunctionMode):
    """Records init events per storage; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[int, list[Event]] = {}
        self.stage = "construction"
        self._alive: list[Any] = []
        self.thread = threading.get_ident()

    # -------------------------------------------------------------------- recording ----

    def record(self, tensor: torch.Tensor, op: str, args: dict[str, Any],
               values: np.ndarray | None = None) -> None:
        if not isinstance(tensor, torch.Tensor):
            return
        region = _region(tensor)
        if region is None:
            op, args, region = f"unsupported:non-contiguous {op}", {}, (
                tensor.storage_offset(), tensor.storage_offset() + 1)
        self._alive.append(tensor)
        event = Event(op, tuple(args.items()), region[0], region[1], self.stage, values)
        self.events.setdefault(_storage_key(tensor), []).append(event)

    def inherit(self, result: torch.Tensor, source: torch.Tensor) -> None:
        """``result`` is a new tensor with ``source``'s values (a clone, a dtype move)."""
        region, origin = _region(result), _region(source)
        if region is None or origin is None:
            self.record(result, "unsupported:copy of a non-contiguous tensor", {})
            return
        self._alive.extend((result, source))
        shift = region[0] - origin[0]
        inherited = self.events.setdefault(_storage_key(result), [])
        for event in list(self.events.get(_storage_key(source), ())):
            start, stop = max(event.start, origin[0]), min(event.stop, origin[1])
            if start < stop:
                values = event.values
                if values is not None:
                    values = values[start - event.start : stop - event.start]
                inherited.append(Event(event.op, event.args, start + shift, stop + shift,
                                       event.stage, values))

    def record_init(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A ``torch.nn.init``-style call: ``name(tensor, *args, **kwargs)``."""
        tensor = args[0] if args else kwargs.get("tensor")
        op, params = INIT_FUNCTIONS[name]
        values = {}
        rest = list(args[1:])
        for key, default in params:
            values[key] = _number(rest.pop(0) if rest else kwargs.get(key, default))
        self.record(tensor, op, values)

    def record_copy(self, target: torch.Tensor, source: Any) -> None:
        if isinstance(source, torch.Tensor):
            if source.device.type != "meta" and source.numel() == target.numel():
                self.record(target, "values", {}, _values(source))
                return
            if source.device.type != "meta" and source.numel() == 1:
                self.record(target, "constant", {"val": source.item()})
                return
            self.record(target, "unsupported:copy of a tensor with unknown values", {})
            return
        self.record(target, "constant", {"val": _number(source)})

    # ------------------------------------------------------------------ dispatching ----

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        init_name = _TORCH_INIT.get(func)
        if init_name is not None:
            self.record_init(init_name, args, kwargs)
            return func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name == "tensor" and func is torch.tensor and args and _small_data(args[0]) \
                and str(kwargs.get("device", "meta")) == "meta":
            kwargs = {**kwargs, "device": "cpu"}
        result = func(*args, **kwargs)
        if name in _FACTORIES and func is getattr(torch, name, None) \
                and isinstance(result, torch.Tensor):
            op, params = _FACTORIES[name](args[1:] if name.endswith("_like") else args, kwargs)
            self.record(result, op, params)
        elif name == "tensor" and func is torch.tensor and isinstance(result, torch.Tensor):
            if args and isinstance(args[0], (int, float)):  # the Python value, unrounded
                self.record(result, "constant", {"val": float(args[0])})
            else:
                self.record(result, "values", {}, _values(result))
        elif name in _METHODS and args and isinstance(args[0], torch.Tensor):
            op, params = _METHODS[name](args[1:], kwargs)
            self.record(args[0], op, params)
        elif name == "copy_" and args and isinstance(args[0], torch.Tensor):
            self.record_copy(args[0], args[1] if len(args) > 1 else kwargs.get("src"))
        elif name in _SAME_VALUES and args and isinstance(args[0], torch.Tensor) \
                and isinstance(result, torch.Tensor) \
                and _storage_key(result) != _storage_key(args[0]):
            self.inherit(result, args[0])
        elif name == "pad" and args and isinstance(args[0], torch.Tensor) \
                and isinstance(result, torch.Tensor):
            widths = args[1] if len(args) > 1 else kwargs.get("pad", ())
            if all(int(w) == 0 for w in widths):  # transformers' _adjust_bias: a copy
                self.inherit(result, args[0])
            else:
                self.record(result, "unsupported:padding", {})
        elif (name.endswith("_") and not name.endswith("__") and name not in _FLAGS_ONLY
              and args and isinstance(args[0], torch.Tensor)):
            self.record(args[0], f"unsupported:in-place {name}", {})
        return result


@contextlib.contextmanager
def patched_init_table(recorder: Recorder) -> Iterator[None]:
    """transformers' table of torch init functions, recording on the tracing thread
    (other threads still get the real functions)."""
    from transformers import initialization

    table = initialization.TORCH_INIT_FUNCTIONS
    originals = dict(table)

    def recording(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != recorder.thread:
                return original(*args, **kwargs)
            recorder.record_init(name, args, kwargs)
            return args[0] if args else kwargs.get("tensor")

        return call

    try:
        for name, original in originals.items():
            if name in INIT_FUNCTIONS:
                table[name] = recording(name, original)
        yield
    finally:
        table.update(originals)


def flat_range_of(tensor: torch.Tensor) -> tuple[int, int]:
    """(storage key, first element) of a saved tensor."""
    return _storage_key(tensor), tensor.storage_offset()
