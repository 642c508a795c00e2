"""The Keras 3 convention: weight paths, Keras layouts and each layer's own defaults.

- Dense/Conv: ``kernel`` (in, out) / (*k, in/g, out), transposed (*k, out, in) and no
  groups, ``glorot_uniform``; ``bias`` ``zeros`` (its own fans);
- norms: ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``; RMS ``scale``; the
  moving statistics always exist;
- Embedding: ``embeddings`` ~ U(-0.05, 0.05) (Keras' ``"uniform"``);
- LSTM/GRU (a cell ``lstm_cell``/``gru_cell``): ``kernel`` (in, G*u) glorot_uniform,
  ``recurrent_kernel`` (u, G*u) orthogonal, ``bias`` zeros: LSTM (4u,) gates i, f, c, o
  with the forget slice [u, 2u) one (``unit_forget_bias``, an override after the
  initializer, as Keras builds it); GRU gates z, r, h with bias (2, 3u) (``reset_after``)
  or (3u,). A stack of ``num_layers`` is layers ``<name>_0`` ... (one layer keeps
  ``<name>``); ``bidirectional`` is ``Bidirectional(LSTM(u, name=n), name=n)``:
  ``n/forward_n/lstm_cell/kernel`` and ``n/backward_n/...``;
- MultiHeadAttention (``EinsumDense`` sublayers), H heads, key_dim and value_dim default
  E / H: kernels ``query`` (E, H, key_dim), ``key`` (kdim, H, key_dim), ``value``
  (vdim, H, value_dim), ``attention_output`` (H, value_dim, E), glorot_uniform with the
  fans Keras 3 derives from the einsum (input axes -> fan_in, output axes -> fan_out);
  biases (H, key_dim), (H, key_dim), (H, value_dim), (E,) zeros.
"""

from __future__ import annotations

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
from weightinit.core.fans import KERAS_LAYOUT, Fans
from weightinit.core.initializers import GlorotUniform, Orthogonal, RandomUniform

GLOROT_UNIFORM = GlorotUniform()
ORTHOGONAL = Orthogonal()
UNIFORM = RandomUniform()  # Keras' "uniform": U(-0.05, 0.05)


class _KerasRecurrent(RecurrentRules):
    lstm_gates = "ifco"
    projection = None
    unit_forget_bias = True
    reset_before = True

    def slots(self, gates: int, inputs: int, hidden: int, outputs: int, bias: bool,
              split_bias: bool, forget: tuple[Override, ...],
              projection: int) -> list[Slot]:
        gated = gates * hidden
        slots = [
            Slot("weight", "kernel", KERAS_LAYOUT.dense_shape(inputs, gated), GLOROT_UNIFORM,
                 "weight_init"),
            Slot("recurrent", "recurrent_kernel", KERAS_LAYOUT.dense_shape(outputs, gated),
                 ORTHOGONAL, "recurrent_init"),
        ]
        if bias:
            shape = (2, gated) if split_bias else (gated,)
            slots.append(Slot("bias", "bias", shape, ZEROS, "bias_init", overrides=forget))
        return slots

    def path(self, layer: str, cell: str, index: int, direction: int, layers: int,
             bidirectional: bool, name: str) -> str:
        layer_name = layer if layers == 1 else f"{layer}_{index}"
        inner = f"{('forward', 'backward')[direction]}_{layer_name}/" if bidirectional else ""
        return f"{layer_name}/{inner}{cell}/{name}"


class _KerasAttention(AttentionRules):
    head_sizes = True
    bias_kv = False

    def slots(self, embed: int, heads: int, kdim: int, vdim: int, key_dim: int | None,
              value_dim: int | None, bias: bool, add_bias_kv: bool) -> list[Slot]:
        key_dim = key_dim or embed // heads
        value_dim = value_dim or key_dim
        slots = []
        for name, width, head_size in (("query", embed, key_dim), ("key", kdim, key_dim),
                                       ("value", vdim, value_dim)):
            slots.append(Slot("weight", f"{name}/kernel", (width, heads, head_size),
                              GLOROT_UNIFORM, "weight_init",
                              fans=Fans(width, heads * head_size)))
            if bias:
                slots.append(Slot("bias", f"{name}/bias", (heads, head_size), ZEROS,
                                  "bias_init"))
        slots.append(Slot("out_weight", "attention_output/kernel", (heads, value_dim, embed),
                          GLOROT_UNIFORM, "out_weight_init",
                          fans=Fans(heads * value_dim, embed)))
        if bias:
            slots.append(Slot("out_bias", "attention_output/bias", (embed,), ZEROS,
                              "out_bias_init"))
        return slots


KERAS = Convention(
    name="keras",
    layout=KERAS_LAYOUT,
    separator="/",
    repeat_prefix="{name}_{index}/",
    file_format=None,
    absolute_truncation=False,
    dense=DenseRules(weight="kernel", weight_init=GLOROT_UNIFORM, bias_init=ZEROS,
                     bias_weight_fans=False, grouped_transposed=False),
    norm=NormRules(scale="gamma", rms_scale="scale", shift="beta", running_mean="moving_mean",
                   running_var="moving_variance", counter=None, optional_running_stats=False),
    embedding=EmbeddingRules(table="embeddings", init=UNIFORM),
    recurrent=_KerasRecurrent(),
    attention=_KerasAttention(),
)
