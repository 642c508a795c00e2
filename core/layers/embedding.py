"""``embedding``: a lookup table of ``num_embeddings`` vectors of ``embedding_dim``.

torch ``nn.Embedding``: ``weight`` (num_embeddings, embedding_dim) ~ N(0, 1), with the
``padding_idx`` row zero (``reset_parameters`` then ``_fill_padding_idx_with_zero``).
keras ``Embedding``: ``embeddings`` (input_dim, output_dim) ~ U(-0.05, 0.05) (Keras'
``"uniform"``, i.e. ``random_uniform``). Keras has no padding index; a ``padding_idx``
given under keras zeroes that row all the same, since the request asked for it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictInt
from weightinit.core.layers.base import (
    IGNORED,
    Expansion,
    Extent,
    InitField,
    LayerBase,
    Override,
    TensorPlan,
    check,
)
from weightinit.core.layers.tensors import with_override_stats


class Embedding(LayerBase):
    """An embedding table (torch ``nn.Embedding``, Keras ``Embedding``).

    Initializer override: ``embedding_init`` (the table).
    """

    type: Literal["embedding"] = "embedding"
    num_embeddings: Extent
    embedding_dim: Extent
    padding_idx: StrictInt | None = Field(
        None, description="row set to zero after the initializer; negative counts from the end"
    )
    max_norm: Any = IGNORED
    norm_type: Any = Field(None, description="accepted and ignored")
    scale_grad_by_freq: Any = Field(None, description="accepted and ignored")
    sparse: Any = Field(None, description="accepted and ignored")
    embedding_init: InitField = None

    def padding_row(self, ctx: Expansion) -> int | None:
        """The padding row as a non-negative index (torch's rule for negative values)."""
        if self.padding_idx is None:
            return None
        check(
            -self.num_embeddings <= self.padding_idx < self.num_embeddings,
            (*ctx.loc, "padding_idx"),
            f"padding_idx must be within num_embeddings ({self.num_embeddings}), "
            f"got {self.padding_idx}",
        )
        return self.padding_idx % self.num_embeddings

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        rules = ctx.convention.embedding
        row = self.padding_row(ctx)
        overrides = []
        if row is not None:
            start = row * self.embedding_dim
            overrides.append(Override(start, start + self.embedding_dim, 0.0))
        plan = ctx.tensor(
            self, "embedding", rules.table, (self.num_embeddings, self.embedding_dim),
            self.embedding_init, rules.init, init_field="embedding_init", overrides=overrides,
        )
        return [with_override_stats(plan)]
