"""The one dtype table (``weightinit.core.dtypes``) agrees with numpy, ml_dtypes and the
official safetensors loader."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from weightinit.core import dtypes


@pytest.mark.parametrize("name", (*dtypes.FLOAT_DTYPES, "int64"))
def test_codes_and_sizes_match_the_safetensors_library(name: str, tmp_path: Path) -> None:
    array = np.arange(6).astype(dtypes.numpy_dtype_of_code(dtypes.SAFETENSORS_DTYPE[name]))
    path = tmp_path / "one.safetensors"
    save_file({"x": array}, str(path))
    header_length = int.from_bytes(path.read_bytes()[:8], "little")
    assert f'"dtype":"{dtypes.SAFETENSORS_DTYPE[name]}"' in path.read_bytes()[
        8 : 8 + header_length].decode()
    assert array.itemsize == dtypes.ITEMSIZE[name]
    assert load_file(str(path))["x"].dtype == array.dtype


def test_spec_dtypes_are_the_generated_ones() -> None:
    assert set(get_args(dtypes.DType)) == set(dtypes.FLOAT_DTYPES)
    assert dtypes.numpy_dtype("bfloat16").name == "bfloat16"
    with pytest.raises(ValueError, match="unsupported dtype"):
        dtypes.numpy_dtype("int64")
    with pytest.raises(ValueError, match="unsupported safetensors dtype"):
        dtypes.numpy_dtype_of_code("F8_E4M3")
