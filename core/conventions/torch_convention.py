"""The torch convention: ``state_dict`` keys, torch layouts and ``reset_parameters``.

- dense/conv: ``weight`` (out, in) / (out, in/g, *k), transposed (in, out/g, *k), and
  ``bias``, both ``torch_default`` (U(+-1/sqrt(fan_in)), the bias with the weight's
  fan_in);
- norms: ``weight``, ``bias``, ``running_mean``, ``running_var`` and the int64 counter
  ``num_batches_tracked``;
- embedding: ``weight`` ~ N(0, 1);
- LSTM/GRU (``RNNBase.reset_parameters``): every tensor ~ U(+-1/sqrt(hidden_size)); per
  layer ``k`` and direction (suffix ``_reverse``): ``weight_ih_l{k}`` (G*h, in),
  ``weight_hh_l{k}`` (G*h, h or proj_size), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*h), and
  with ``proj_size`` ``weight_hr_l{k}`` (proj_size, h); gates along dim 0, LSTM i, f, g, o,
  GRU r, z, n;
- multi-head attention (``_reset_parameters``), E = embed_dim: ``in_proj_weight`` (3E, E)
  xavier_uniform when kdim == vdim == E (torch's fans of the packed matrix: fan_in E,
  fan_out 3E), else ``q/k/v_proj_weight`` (E, E/kdim/vdim); ``in_proj_bias`` (3E) zeros;
  ``bias_k``/``bias_v`` (1, 1, E) xavier_normal; ``out_proj.weight`` the Linear default
  and ``out_proj.bias`` zeros (drawn, if overridden, with the weight's fans).
"""

from __future__ import annotations

import math
from functools import lru_cache

from weightinit.core.conventions.base import (
    ZEROS,
    AttentionRules,
    Convention,
    DenseRules,
    EmbeddingRules,
    NormRules,
    Override,
    RecurrentRules,
    Slot,
)
from weightinit.core.fans import TORCH_LAYOUT
from weightinit.core.initializers import Normal, TorchDefault, Uniform, XavierNormal, XavierUniform

TORCH_DEFAULT = TorchDefault()
XAVIER_UNIFORM = XavierUniform()
XAVIER_NORMAL = XavierNormal()
STANDARD_NORMAL = Normal(mean=0.0, std=1.0)


@lru_cache(maxsize=256)
def recurrent_default(hidden_size: int) -> Uniform:
    """U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), one object per size so a stack's
    tensors share their resolution."""
    bound = 1.0 / math.sqrt(hidden_size)
    return Uniform(low=-bound, high=bound)


class _TorchRecurrent(RecurrentRules):
    lstm_gates = "ifgo"
    projection = "weight_hr"
    unit_forget_bias = False
    reset_before = False

    def slots(self, gates: int, inputs: int, hidden: int, outputs: int, bias: bool,
              split_bias: bool, forget: tuple[Override, ...],
              projection: int) -> list[Slot]:
        default = recurrent_default(hidden)
        gated = gates * hidden
        slots = [
            Slot("weight", "weight_ih", TORCH_LAYOUT.dense_shape(inputs, gated), default,
                 "weight_init"),
            Slot("recurrent", "weight_hh", TORCH_LAYOUT.dense_shape(outputs, gated), default,
                 "recurrent_init"),
        ]
        if bias:
            slots += [Slot("bias", name, (gated,), default, "bias_init")
                      for name in ("bias_ih", "bias_hh")]
        if projection:
            slots.append(Slot("projection", "weight_hr",
                              TORCH_LAYOUT.dense_shape(hidden, projection), default,
                              "projection_init"))
        return slots

    def path(self, layer: str, cell: str, index: int, direction: int, layers: int,
             bidirectional: bool, name: str) -> str:
        return f"{layer}.{name}_l{index}{'_reverse' if direction else ''}"


class _TorchAttention(AttentionRules):
    head_sizes = False
    bias_kv = True

    def slots(self, embed: int, heads: int, kdim: int, vdim: int, key_dim: int | None,
              value_dim: int | None, bias: bool, add_bias_kv: bool) -> list[Slot]:
        if kdim == embed and vdim == embed:
            slots = [Slot("weight", "in_proj_weight", (3 * embed, embed), XAVIER_UNIFORM,
                          "weight_init")]
        else:
            slots = [Slot("weight", f"{name}_proj_weight", (embed, width), XAVIER_UNIFORM,
                          "weight_init")
                     for name, width in (("q", embed), ("k", kdim), ("v", vdim))]
        if bias:
            slots.append(Slot("bias", "in_proj_bias", (3 * embed,), ZEROS, "bias_init"))
        if add_bias_kv:
            slots += [Slot("bias_kv", name, (1, 1, embed), XAVIER_NORMAL, "bias_kv_init")
                      for name in ("bias_k", "bias_v")]
        slots.append(Slot("out_weight", "out_proj.weight", (embed, embed), TORCH_DEFAULT,
                          "out_weight_init"))
        if bias:  # as for a Linear bias: a fan-based override uses the weight's fan_in
            slots.append(Slot("out_bias", "out_proj.bias", (embed,), ZEROS, "out_bias_init",
                              weight_fans=True))
        return slots


TORCH = Convention(
    name="torch",
    layout=TORCH_LAYOUT,
    separator=".",
    repeat_prefix="{name}.{index}.",
    file_format="pt",  # what transformers' loaders look for
    absolute_truncation=True,  # trunc_normal_ cuts at a=-2, b=2 absolute
    dense=DenseRules(weight="weight", weight_init=TORCH_DEFAULT, bias_init=TORCH_DEFAULT,
                     bias_weight_fans=True, grouped_transposed=True),
    norm=NormRules(scale="weight", rms_scale="weight", shift="bias",
                   running_mean="running_mean", running_var="running_var",
                   counter="num_batches_tracked", optional_running_stats=True),
    embedding=EmbeddingRules(table="weight", init=STANDARD_NORMAL),
    recurrent=_TorchRecurrent(),
    attention=_TorchAttention(),
)
