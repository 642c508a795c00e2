"""Recurrent layers: ``lstm`` and ``gru`` (``num_layers``, ``bidirectional``, ``bias``).

torch (``nn.LSTM``/``nn.GRU``, ``RNNBase.reset_parameters``): every tensor, whatever its
role, ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)). Per layer ``k`` and direction
(suffix ``_reverse`` for the backward one), in ``state_dict`` order: ``weight_ih_l{k}``
(G*h, in), ``weight_hh_l{k}`` (G*h, h or proj_size), ``bias_ih_l{k}``, ``bias_hh_l{k}``
(G*h), and with ``proj_size`` ``weight_hr_l{k}`` (proj_size, h). Gates are packed along
dim 0 as LSTM i, f, g, o (G = 4) and GRU r, z, n (G = 3); layer k > 0 reads
(proj_size or h) * directions inputs.

keras (``LSTM``/``GRU`` wrapping an ``LSTMCell``/``GRUCell``): ``kernel`` (in, G*u)
glorot_uniform, ``recurrent_kernel`` (u, G*u) orthogonal over the whole matrix, ``bias``
zeros: LSTM (4u,) gates i, f, c, o with the forget slice [u, 2u) set to one
(``unit_forget_bias``, an override after the initializer, as Keras builds it); GRU gates
z, r, h with bias (2, 3u) (``reset_after``, the default) or (3u,). Paths are
``<name>/lstm_cell/kernel``. Keras has no ``num_layers``: a stack is ``num_layers``
layers named ``<name>_0`` ... (a single layer keeps ``<name>``), each reading the
previous one's (2 u if bidirectional) outputs. ``bidirectional`` is Keras'
``Bidirectional`` wrapper with the wrapped layer of the same name, as in
``Bidirectional(LSTM(u, name=n), name=n)``: ``n/forward_n/lstm_cell/kernel`` and
``n/backward_n/...``.

Initializer overrides: ``weight_init`` (input weights: weight_ih / kernel),
``recurrent_init`` (weight_hh / recurrent_kernel), ``bias_init`` (all biases),
``projection_init`` (LSTM weight_hr). With a fan-dependent ``bias_init`` under keras and
``unit_forget_bias``, Keras calls the initializer on the (u,) and (2u,) pieces around the
forget slice (their own fans, and the same seed, so the c-gate piece repeats the i-gate
values scaled); weightinit draws the whole bias once.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field
from weightinit.core.initializers import Uniform
from weightinit.core.layers.base import (
    IGNORED,
    Count,
    Expansion,
    InitField,
    LayerBase,
    Override,
    Size,
    TensorPlan,
    check,
)
from weightinit.core.layers.tensors import (
    GLOROT_UNIFORM,
    ORTHOGONAL,
    ZEROS,
    renamed,
    symmetric_uniform,
    with_override_stats,
)


class _Recurrent(LayerBase):
    """What LSTM and GRU share: sizes, stacking, direction and the tensor roles."""

    gates: ClassVar[int]
    cell: ClassVar[str]

    input_size: Size
    hidden_size: Size
    num_layers: Size = 1
    bias: bool = True
    bidirectional: bool = False
    batch_first: Any = IGNORED
    dropout: Any = IGNORED
    weight_init: InitField = Field(None, description="input weights: weight_ih / kernel")
    recurrent_init: InitField = Field(
        None, description="hidden-to-hidden weights: weight_hh / recurrent_kernel"
    )
    bias_init: InitField = Field(None, description="every bias: bias_ih, bias_hh / bias")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def output_size(self) -> int:
        """Features each direction of a layer passes on (torch: proj_size if set)."""
        return self.hidden_size

    def expand(self, ctx: Expansion) -> list[TensorPlan]:
        self.check_options(ctx)
        if ctx.convention == "torch":
            return self.torch_tensors(ctx)
        return self.keras_tensors(ctx)

    def check_options(self, ctx: Expansion) -> None:
        """Reject options the convention's framework does not have."""

    # ------------------------------------------------------------------ torch ----

    def torch_tensors(self, ctx: Expansion) -> list[TensorPlan]:
        default = symmetric_uniform(1.0 / math.sqrt(self.hidden_size))
        gated = self.gates * self.hidden_size
        plans: list[TensorPlan] = []
        for k in range(self.num_layers):
            if k == 1:  # every layer of the stack has the first one's tensors
                ctx.expect(len(plans) * (self.num_layers - 1))
            inputs = self.input_size if k == 0 else self.output_size() * self.directions
            for suffix in ("", "_reverse")[: self.directions]:
                tail = f"_l{k}{suffix}"
                plans.append(ctx.tensor(
                    self, "weight", f"weight_ih{tail}", (gated, inputs), self.weight_init,
                    default, init_field="weight_init",
                ))
                plans.append(ctx.tensor(
                    self, "recurrent", f"weight_hh{tail}", (gated, self.output_size()),
                    self.recurrent_init, default, init_field="recurrent_init",
                ))
                if self.bias:
                    for name in ("bias_ih", "bias_hh"):
                        plans.append(ctx.tensor(
                            self, "bias", f"{name}{tail}", (gated,), self.bias_init, default,
                            init_field="bias_init",
                        ))
                plans.extend(self.torch_extra(ctx, tail, default))
        return plans

    def torch_extra(self, ctx: Expansion, tail: str, default: Uniform) -> list[TensorPlan]:
        """Tensors after the biases of one torch layer and direction (LSTM projection)."""
        return []

    # ------------------------------------------------------------------ keras ----

    def keras_tensors(self, ctx: Expansion) -> list[TensorPlan]:
        units = self.hidden_size
        gated = self.gates * units
        plans: list[TensorPlan] = []
        for k in range(self.num_layers):
            if k == 1:  # every layer of the stack has the first one's tensors
                ctx.expect(len(plans) * (self.num_layers - 1))
            inputs = self.input_size if k == 0 else units * self.directions
            layer_name = self.name if self.num_layers == 1 else f"{self.name}_{k}"
            wrapped = ("forward", "backward") if self.bidirectional else (None,)
            for direction in wrapped:
                inner = f"{direction}_{layer_name}/" if direction else ""
                path = f"{ctx.prefix}{layer_name}/{inner}{self.cell}/"
                tensors = [
                    ctx.tensor(
                        self, "weight", "kernel", (inputs, gated), self.weight_init,
                        GLOROT_UNIFORM, init_field="weight_init",
                    ),
                    ctx.tensor(
                        self, "recurrent", "recurrent_kernel", (units, gated),
                        self.recurrent_init, ORTHOGONAL, init_field="recurrent_init",
                    ),
                ]
                if self.bias:
                    tensors.append(self.keras_bias(ctx))
                plans.extend(renamed(p, path + p.name.rsplit("/", 1)[1]) for p in tensors)
        return plans

    def keras_bias(self, ctx: Expansion) -> TensorPlan:
        raise NotImplementedError


class LSTM(_Recurrent):
    """torch ``nn.LSTM`` / Keras ``LSTM``; gates i, f, g(c), o in both."""

    type: Literal["lstm"] = "lstm"
    gates: ClassVar[int] = 4
    cell: ClassVar[str] = "lstm_cell"

    proj_size: Count = Field(0, description="torch only: project h to this size (weight_hr)")
    unit_forget_bias: bool | None = Field(
        None, description="keras only: forget-gate bias set to one (Keras default true)"
    )
    projection_init: InitField = Field(None, description="torch weight_hr (proj_size)")

    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    def check_options(self, ctx: Expansion) -> None:
        if ctx.convention == "torch":
            check(
                self.proj_size < self.hidden_size, (*ctx.loc, "proj_size"),
                f"proj_size ({self.proj_size}) must be smaller than hidden_size "
                f"({self.hidden_size})",
            )
            check(
                not self.unit_forget_bias, (*ctx.loc, "unit_forget_bias"),
                "torch's LSTM has no unit_forget_bias; give bias_init or use keras",
            )
        else:
            check(
                self.proj_size == 0, (*ctx.loc, "proj_size"), "Keras' LSTM has no proj_size"
            )
        check(
            self.proj_size > 0 or self.projection_init is None,
            (*ctx.loc, "projection_init"), "projection_init needs proj_size > 0",
        )

    def torch_extra(self, ctx: Expansion, tail: str, default: Uniform) -> list[TensorPlan]:
        if not self.proj_size:
            return []
        return [ctx.tensor(
            self, "projection", f"weight_hr{tail}", (self.proj_size, self.hidden_size),
            self.projection_init, default, init_field="projection_init",
        )]

    def keras_bias(self, ctx: Expansion) -> TensorPlan:
        units = self.hidden_size
        forget_one = self.unit_forget_bias is not False
        overrides = [Override(units, 2 * units, 1.0)] if forget_one else []
        return with_override_stats(ctx.tensor(
            self, "bias", "bias", (4 * units,), self.bias_init, ZEROS, init_field="bias_init",
            overrides=overrides,
        ))


class GRU(_Recurrent):
    """torch ``nn.GRU`` (gates r, z, n) / Keras ``GRU`` (gates z, r, h)."""

    type: Literal["gru"] = "gru"
    gates: ClassVar[int] = 3
    cell: ClassVar[str] = "gru_cell"

    reset_after: bool = Field(
        True, description="keras: separate input and recurrent biases, bias (2, 3u)"
    )

    def check_options(self, ctx: Expansion) -> None:
        check(
            ctx.convention == "keras" or self.reset_after, (*ctx.loc, "reset_after"),
            "torch's GRU always applies the reset gate after the recurrent matmul "
            "(reset_after true)",
        )

    def keras_bias(self, ctx: Expansion) -> TensorPlan:
        gated = 3 * self.hidden_size
        shape = (2, gated) if self.reset_after else (gated,)
        return ctx.tensor(
            self, "bias", "bias", shape, self.bias_init, ZEROS, init_field="bias_init"
        )
