"""Layer types of a spec and their expansion into tensors.

Each layer module defines Pydantic models with a ``type`` literal and an ``expand``
method; ``Layer`` is their discriminated union. A new layer type is a model in a module
plus one entry in ``LAYER_TYPES``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.layers.base import Expansion, Override, TensorPlan
from core.layers.dense import Conv, Linear
from core.layers.generic import Repeat, TensorLayer

LAYER_TYPES = (Linear, Conv, TensorLayer, Repeat)

Layer = Annotated[
    Linear | Conv | TensorLayer | Repeat,
    Field(discriminator="type"),
]

Repeat.model_rebuild()

__all__ = ["LAYER_TYPES", "Expansion", "Layer", "Override", "TensorPlan"]
