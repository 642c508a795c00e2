"""The one table of tensor dtypes: spec name, safetensors code, item size, numpy dtype.

Outputs are the four float dtypes (``DType``); ``int64`` appears in plans for integer
buffers such as batch norm's ``num_batches_tracked``. Readers of safetensors files that
other programs wrote also meet ``I32``, ``U8`` and ``BOOL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal, get_args

import numpy as np

DType = Literal["float32", "float16", "bfloat16", "float64"]
"""An output dtype a spec may ask for."""


@dataclass(frozen=True)
class DTypeInfo:
    name: str  # as in specs and torch (torch.bfloat16 is "bfloat16"); numpy's name too
    safetensors: str  # the header's "dtype" code
    itemsize: int

    @property
    def numpy(self) -> np.dtype:
        return _numpy_dtype(self.name)


@cache
def _numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        # ml_dtypes takes about half a second to import: only bfloat16 arrays need it, so
        # planning and the CLI's start do not pay for it.
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


_TABLE = (
    DTypeInfo("float64", "F64", 8),
    DTypeInfo("float32", "F32", 4),
    DTypeInfo("bfloat16", "BF16", 2),
    DTypeInfo("float16", "F16", 2),
    DTypeInfo("int64", "I64", 8),
    DTypeInfo("int32", "I32", 4),
    DTypeInfo("uint8", "U8", 1),
    DTypeInfo("bool", "BOOL", 1),
)
BY_NAME = {info.name: info for info in _TABLE}
BY_SAFETENSORS = {info.safetensors: info for info in _TABLE}

FLOAT_DTYPES: tuple[str, ...] = ("float64", "float32", "bfloat16", "float16")
"""The generated dtypes, in the order the kernels number them."""
assert set(FLOAT_DTYPES) == set(get_args(DType))

_PLANNED = ("float64", "int64", "float32", "float16", "bfloat16")
ITEMSIZE = {name: BY_NAME[name].itemsize for name in _PLANNED}
SAFETENSORS_DTYPE = {name: BY_NAME[name].safetensors for name in _PLANNED}


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype of a generated dtype name (``bfloat16`` is ml_dtypes')."""
    if name not in FLOAT_DTYPES:
        raise ValueError(f"unsupported dtype {name!r}; expected one of {FLOAT_DTYPES}")
    return BY_NAME[name].numpy


def numpy_dtype_of_code(code: str) -> np.dtype:
    """The numpy dtype of a safetensors dtype code (``ValueError`` if unknown)."""
    try:
        return BY_SAFETENSORS[code].numpy
    except KeyError:
        raise ValueError(f"unsupported safetensors dtype {code!r}") from None
