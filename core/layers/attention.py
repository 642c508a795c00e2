"""``multihead_attention``: torch ``nn.MultiheadAttention`` / Keras ``MultiHeadAttention``.

torch (``_reset_parameters``), E = embed_dim:
- kdim == vdim == E: ``in_proj_weight`` (3E, E) xavier_uniform with torch's fans of that
  packed matrix, fan_in E and fan_out 3E (bound sqrt(6 / 4E)); otherwise
  ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim), each
  xavier_uniform;
- ``in_proj_bias`` (3E) zeros; ``bias_k``/``bias_v`` (1, 1, E) xavier_normal (std
  1/sqrt(E)) with ``add_bias_kv``;
- ``out_proj.weight`` (E, E) the Linear default U(+-1/sqrt(E)), ``out_proj.bias`` zeros.

keras (``EinsumDense`` sublayers ``query``, ``key``, ``value``, ``attention_output``),
H = num_heads, key_dim and value_dim default E / H: kernels (E, H, key_dim),
(kdim, H, key_dim), (vdim, H, value_dim), (H, value_dim, E), glorot_uniform with the fans
Keras 3 derives from the einsum (input axes -> fan_in, output axes -> fan_out): (E, H*key_dim),
(kdim, H*key_dim), (vdim, H*value_dim), (H*value_dim, E); biases (H, key_dim),
(H, key_dim), (H, value_dim), (E,) zeros. Keras has no ``add_bias_kv``.

Initializer overrides: ``weight_init`` (input projections), ``bias_init`` (their biases),
``out_weight_init`` / ``out_bias_init`` (output projection), ``bias_kv_init`` (torch
bias_k, bias_v).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from weightinit.core.fans import Fans
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
from weightinit.core.layers.tensors import (
    GLOROT_UNIFORM,
    TORCH_DEFAULT,
    XAVIER_NORMAL,
    XAVIER_UNIFORM,
    ZEROS,
)


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
        torch = ctx.convention == "torch"
        if torch or self.key_dim is None:
            check(
                self.embed_dim % self.num_heads == 0, (*ctx.loc, "num_heads"),
                f"embed_dim ({self.embed_dim}) must be divisible by num_heads "
                f"({self.num_heads})",
            )
        check(
            self.add_bias_kv or self.bias_kv_init is None, (*ctx.loc, "bias_kv_init"),
            "bias_kv_init needs add_bias_kv",
        )
        if torch:
            for field in ("key_dim", "value_dim"):
                check(
                    getattr(self, field) is None, (*ctx.loc, field),
                    f"{field} is a Keras option; torch's head size is embed_dim / num_heads",
                )
            return self.torch_tensors(ctx)
        check(not self.add_bias_kv, (*ctx.loc, "add_bias_kv"), "Keras has no add_bias_kv")
        return self.keras_tensors(ctx)

    def torch_tensors(self, ctx: Expansion) -> list[TensorPlan]:
        embed = self.embed_dim
        kdim = embed if self.kdim is None else self.kdim  # 0 is a size (torch: not None)
        vdim = embed if self.vdim is None else self.vdim
        plans = []
        if kdim == embed and vdim == embed:
            plans.append(ctx.tensor(
                self, "weight", "in_proj_weight", (3 * embed, embed), self.weight_init,
                XAVIER_UNIFORM, init_field="weight_init",
            ))
        else:
            for name, width in (("q", embed), ("k", kdim), ("v", vdim)):
                plans.append(ctx.tensor(
                    self, "weight", f"{name}_proj_weight", (embed, width), self.weight_init,
                    XAVIER_UNIFORM, init_field="weight_init",
                ))
        if self.bias:
            plans.append(ctx.tensor(
                self, "bias", "in_proj_bias", (3 * embed,), self.bias_init, ZEROS,
                init_field="bias_init",
            ))
        if self.add_bias_kv:
            for name in ("bias_k", "bias_v"):
                plans.append(ctx.tensor(
                    self, "bias_kv", name, (1, 1, embed), self.bias_kv_init, XAVIER_NORMAL,
                    init_field="bias_kv_init",
                ))
        out_weight = ctx.tensor(
            self, "out_weight", "out_proj.weight", (embed, embed), self.out_weight_init,
            TORCH_DEFAULT, init_field="out_weight_init",
        )
        plans.append(out_weight)
        if self.bias:
            plans.append(ctx.tensor(
                self, "out_bias", "out_proj.bias", (embed,), self.out_bias_init, ZEROS,
                init_field="out_bias_init",
                # as for a Linear bias: a fan-based override uses the weight's fan_in
                fans=out_weight.fans,
            ))
        return plans

    def keras_tensors(self, ctx: Expansion) -> list[TensorPlan]:
        embed, heads = self.embed_dim, self.num_heads
        key_dim = self.key_dim or embed // heads
        value_dim = self.value_dim or key_dim
        projections = (
            ("query", embed, key_dim),
            ("key", embed if self.kdim is None else self.kdim, key_dim),
            ("value", embed if self.vdim is None else self.vdim, value_dim),
        )
        plans = []
        for name, width, head_size in projections:
            plans.append(ctx.tensor(
                self, "weight", f"{name}/kernel", (width, heads, head_size), self.weight_init,
                GLOROT_UNIFORM, init_field="weight_init", fans=Fans(width, heads * head_size),
            ))
            if self.bias:
                plans.append(ctx.tensor(
                    self, "bias", f"{name}/bias", (heads, head_size), self.bias_init, ZEROS,
                    init_field="bias_init",
                ))
        plans.append(ctx.tensor(
            self, "out_weight", "attention_output/kernel", (heads, value_dim, embed),
            self.out_weight_init, GLOROT_UNIFORM, init_field="out_weight_init",
            fans=Fans(heads * value_dim, embed),
        ))
        if self.bias:
            plans.append(ctx.tensor(
                self, "out_bias", "attention_output/bias", (embed,), self.out_bias_init,
                ZEROS, init_field="out_bias_init",
            ))
        return plans
