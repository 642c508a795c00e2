"""Layer types of a spec and their expansion into tensors.

Each layer module defines Pydantic models with a ``type`` literal and an ``expand``
method; ``Layer`` is their discriminated union. A new layer type is a model in a module
plus one entry in ``LAYER_TYPES``.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field
from weightinit.core.layers.attention import MultiheadAttention
from weightinit.core.layers.base import Expansion, Override, TensorPlan
from weightinit.core.layers.dense import Conv, Linear
from weightinit.core.layers.embedding import Embedding
from weightinit.core.layers.generic import Repeat, TensorLayer
from weightinit.core.layers.normalization import BatchNorm, GroupNorm, LayerNorm, RMSNorm
from weightinit.core.layers.recurrent import GRU, LSTM

LAYER_TYPES = (
    Linear, Conv, Embedding, LayerNorm, RMSNorm, BatchNorm, GroupNorm, LSTM, GRU,
    MultiheadAttention, TensorLayer, Repeat,
)

# The union is built from LAYER_TYPES so the two cannot drift apart; ``X | Y`` cannot
# be spelled from a tuple, hence Union.
Layer = Annotated[Union[LAYER_TYPES], Field(discriminator="type")]  # noqa: UP007

Repeat.model_rebuild()

__all__ = ["LAYER_TYPES", "Expansion", "Layer", "Override", "TensorPlan"]
