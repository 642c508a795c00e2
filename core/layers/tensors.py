"""Helpers shared by the embedding, normalization, recurrent and attention layers.

* Default initializers as ready parameter objects (``ZEROS``, ``ONES``, ...).
* ``with_override_stats``: a tensor whose ``overrides`` set part of it to a constant
  (torch's padding row, Keras' forget-gate bias) has expected statistics of the mixture,
  not of its initializer alone, so the plan's expectations match what is observed.
* ``renamed``: Keras paths that are not ``<layer>/<local name>`` (stacked recurrent
  layers ``<name>_<k>/...``) keep their spec layer as the group the report shows.
"""

from __future__ import annotations

import math
from dataclasses import replace

from weightinit.core.initializers import (
    GlorotUniform,
    Normal,
    Ones,
    Orthogonal,
    RandomUniform,
    TorchDefault,
    Uniform,
    XavierNormal,
    XavierUniform,
    Zeros,
)
from weightinit.core.layers.base import TensorPlan

ZEROS = Zeros()
ONES = Ones()
GLOROT_UNIFORM = GlorotUniform()
ORTHOGONAL = Orthogonal()
XAVIER_UNIFORM = XavierUniform()
XAVIER_NORMAL = XavierNormal()
TORCH_DEFAULT = TorchDefault()
STANDARD_NORMAL = Normal(mean=0.0, std=1.0)
KERAS_EMBEDDING_UNIFORM = RandomUniform()  # Keras' "uniform": U(-0.05, 0.05)


def symmetric_uniform(bound: float) -> Uniform:
    """U(-bound, bound), e.g. torch's RNN default with bound 1/sqrt(hidden_size)."""
    return Uniform(low=-bound, high=bound)


def with_override_stats(plan: TensorPlan) -> TensorPlan:
    """The plan with expectations of its values after the overrides (disjoint ranges).

    A fraction ``p_j`` of the elements set to ``v_j`` and the rest drawn with mean ``m``
    and variance ``s^2``: mean = (1 - P) m + sum p_j v_j, E[x^2] = (1 - P)(s^2 + m^2) +
    sum p_j v_j^2, P = sum p_j.
    """
    if not plan.overrides:
        return plan
    numel = math.prod(plan.shape)
    init = plan.init
    fractions = [(o.stop - o.start) / numel for o in plan.overrides]
    rest = 1.0 - sum(fractions)
    mean = rest * init.expected_mean + sum(
        p * o.value for p, o in zip(fractions, plan.overrides, strict=True)
    )
    second = rest * (init.expected_variance + init.expected_mean**2) + sum(
        p * o.value**2 for p, o in zip(fractions, plan.overrides, strict=True)
    )
    variance = max(0.0, second - mean * mean)
    return replace(plan, init=replace(init, expected_mean=mean, expected_variance=variance))


def renamed(plan: TensorPlan, name: str) -> TensorPlan:
    """The plan under another full tensor name; its layer (report group) is unchanged."""
    return replace(plan, name=name)
