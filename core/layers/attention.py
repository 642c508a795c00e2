"""``multihead_attention``: torch ``nn.MultiheadAttention`` / Keras ``MultiHeadAttention``.

Input projections for query, key and value (``embed_dim``, ``kdim``, ``vdim`` features)
and an output projection. The tensors, their names, layouts, fans and defaults are the
convention's (``core.conventions``): torch's packed ``in_proj_weight`` (or
``q/k/v_proj_weight``), ``in_proj_bias``, ``bias_k``/``bias_v`` and ``out_proj``; Keras'
``EinsumDense`` sublayers ``query``, ``key``, ``value`` and ``attention_output`` with
head axes (``key_dim``, ``value_dim``).

Initializer overrides: ``weight_init`` (input projections), ``bias_init`` (their biases),
``out_weight_init`` / ``out_bias_init`` (output projection), ``bias_kv_init`` (torch
bias_k, bias_v).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from weightinit.core.layers.base import (
    IGNORED,
    Expansion,
    Extent,
    InitField,
    LayerBase,
    Size,
    TensorPlan,
    check,
)
from weightinit.core.layers.tensors import planned


class MultiheadAttention(LayerBase):
    """Multi-head attention with input projections for query, key and value."""

    type: Literal["multihead_attention"] = "multihead_attention"
    embed_dim: Size
    num_heads: Size
    bias: bool = True
    add_bias_kv: bool = False
    kdim: Extent | None = Field(None, description="key features (default embed_dim)")
    vdim: Extent | None = Field(None, description="value features (default embed_dim)")
    key_dim: Size | None = Field(
        None, description="keras only: size of each head for query and key (embed_dim/heads)"
    )
    value_dim: Size | None = Field(
        None, description="keras only: size of each head for value (default key_dim)"
    )
    dropout: Any = IGNORED
    batch_first: Any = IGNORED
    add_zero_attn: Any = IGNORED
    weight_init: InitField = Field(
        None, description="input projections: in_proj_weight or q/k/v_proj_weight; "
        "query/key/value kernels"
    )
    bias_init: InitField = Field(None, description="in_proj_bias; query/key/value biases")
    out_weight_init: InitField = Field(
        None, description="out_proj.weight; attention_output kernel"
    )
    out_bias_init: InitField = Field(None, description="out_proj.bias; attention_output bias")
    bias_kv_init: InitField = Field(None, description="torch bias_k and bias_v")

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        rules = ctx.convention.attention
        if not rules.head_sizes or self.key_dim is None:
            check(
                self.embed_dim % self.num_heads == 0, (*ctx.loc, "num_heads"),
                f"embed_dim ({self.embed_dim}) must be divisible by num_heads "
                f"({self.num_heads})",
            )
        check(
            self.add_bias_kv or self.bias_kv_init is None, (*ctx.loc, "bias_kv_init"),
            "bias_kv_init needs add_bias_kv",
        )
        if not rules.head_sizes:
            for field in ("key_dim", "value_dim"):
                check(
                    getattr(self, field) is None, (*ctx.loc, field),
                    f"{field} is a Keras option; torch's head size is embed_dim / num_heads",
                )
        if not rules.bias_kv:
            check(not self.add_bias_kv, (*ctx.loc, "add_bias_kv"), "Keras has no add_bias_kv")
        embed = self.embed_dim
        slots = rules.slots(
            embed, self.num_heads,
            embed if self.kdim is None else self.kdim,  # 0 is a size (torch: not None)
            embed if self.vdim is None else self.vdim,
            self.key_dim, self.value_dim, self.bias, self.add_bias_kv,
        )
        return planned(ctx, self, slots)
