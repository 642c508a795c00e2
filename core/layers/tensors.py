"""Helpers shared by the layers.

* ``planned``: the tensors a convention lays out for a layer (``Slot``s), planned in
  order, each with the layer's override of its initializer field if the request gave one.
* ``with_override_stats``: a tensor whose ``overrides`` set part of it to a constant
  (torch's padding row, Keras' forget-gate bias) has expected statistics of the mixture,
  not of its initializer alone, so the plan's expectations match what is observed.
* ``renamed``: names that are not ``<layer><separator><local name>`` (stacked recurrent
  layers) keep their spec layer as the group the report shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from weightinit.core.conventions import Slot
from weightinit.core.layers.base import Expansion, LayerBase, TensorPlan


def planned(ctx: Expansion, layer: LayerBase, slots: Sequence[Slot]) -> list[TensorPlan]:
    """Plan ``slots`` in order; a slot with ``weight_fans`` takes the fans of the tensor
    planned just before it."""
    plans: list[TensorPlan] = []
    for slot in slots:
        plan = ctx.tensor(
            layer, slot.role, slot.name, slot.shape, getattr(layer, slot.init_field),
            slot.default, init_field=slot.init_field,
            fans=plans[-1].fans if slot.weight_fans else slot.fans, overrides=slot.overrides,
        )
        plans.append(with_override_stats(plan))
    return plans


def with_override_stats(plan: TensorPlan) -> TensorPlan:
    """The plan with expectations of its values after the overrides (disjoint ranges).

    A fraction ``p_j`` of the elements set to ``v_j`` and the rest drawn with mean ``m``
    and variance ``s^2``: mean = (1 - P) m + sum p_j v_j, E[x^2] = (1 - P)(s^2 + m^2) +
    sum p_j v_j^2, P = sum p_j.
    """
    if not plan.overrides:
        return plan
    numel = math.prod(plan.shape)
    if numel == 0:  # a zero-element tensor has nothing to override
        return plan
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
