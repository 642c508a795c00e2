"""The fused kernel's compilation options (its bytes: tests/core/rng/test_kernels.py and
the golden vectors)."""

from __future__ import annotations

import numba
import numpy as np
from weightinit.core.rng import fused


def test_wide_vectors_marks_the_compiled_function() -> None:
    """``_wide_vectors()`` puts ``prefer-vector-width=512`` on the function that calls it
    (in the IR numba hands to LLVM), and only there; the function still computes."""

    @numba.njit
    def marked(x: np.ndarray) -> float:
        fused._wide_vectors()
        total = 0.0
        for value in x:
            total += value
        return total

    @numba.njit
    def plain(x: np.ndarray) -> float:
        return x.sum()

    data = np.arange(10.0)
    assert marked(data) == 45.0
    assert plain(data) == 45.0
    marked_ir = next(iter(marked.inspect_llvm().values()))
    plain_ir = next(iter(plain.inspect_llvm().values()))
    assert '"prefer-vector-width"="512"' in marked_ir
    assert '"prefer-vector-width"' not in plain_ir
