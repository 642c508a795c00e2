"""Refuse a spec whose values cannot be stored in their dtype (a 422 naming the field).

float16 holds at most 65504, float32 and bfloat16 about 3.4e38: a ``constant`` of 1e39
in float32 or a normal whose spread reaches past that would be written as ``inf``,
silently. Each tensor's values lie within ``|mean| + NORMAL_REACH * std`` (a normal
drawn from 53 random bits never goes past 8.3 standard deviations; a uniform's bound is
``sqrt(3)`` of them; a constant is its mean), and within ``|gain|`` for the matrix
initializers (orthogonal, identity, dirac), whose values are bounded by their gain.
"""

from __future__ import annotations

import math

import numpy as np
from weightinit.core import Plan, SpecError

NORMAL_REACH = 8.5
_GAIN_BOUNDED = ("orthogonal", "identity", "eye", "dirac")
LARGEST = {name: float(np.finfo(dtype).max) for name, dtype in (
    ("float16", np.float16), ("float32", np.float32), ("float64", np.float64))}
LARGEST["bfloat16"] = 3.3895313892515355e38


def largest_value(init_config: dict, expected_mean: float, expected_variance: float) -> float:
    """An upper bound on the magnitude of the values an initializer produces."""
    reach = abs(expected_mean) + NORMAL_REACH * math.sqrt(max(expected_variance, 0.0))
    if init_config.get("name") in _GAIN_BOUNDED and "gain" in init_config:
        reach = max(reach, abs(float(init_config["gain"])))
    return reach


def check_representable(plan: Plan) -> None:
    """Raise ``SpecError`` (422) at the first tensor whose values may overflow its dtype."""
    for output in plan.outputs:
        tensor = output.plan
        largest = LARGEST.get(tensor.dtype)
        if largest is None or output.numel == 0:
            continue
        init = tensor.init
        try:
            reach = largest_value(init.config, init.expected_mean, init.expected_variance)
        except (OverflowError, ValueError):
            reach = math.inf
        if not reach <= largest:
            raise SpecError(tensor.loc, (
                f"{init.config.get('name')} values for {tensor.name} reach {reach:.4g}, over "
                f"the largest {tensor.dtype} ({largest:.6g}): they would be stored as "
                "infinity; lower the scale or use a wider dtype"))


