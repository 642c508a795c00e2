"""Recurrent layers: ``lstm`` and ``gru`` (``num_layers``, ``bidirectional``, ``bias``).

A stack of ``num_layers`` layers, each with one or two directions; layer k > 0 reads
(proj_size or hidden_size) * directions inputs. What each layer and direction holds, its
names, layouts, gate order and defaults are the convention's (``core.conventions``):

- torch (``nn.LSTM``/``nn.GRU``): ``weight_ih_l{k}`` (G*h, in), ``weight_hh_l{k}``,
  ``bias_ih_l{k}``, ``bias_hh_l{k}``, ``weight_hr_l{k}`` (with ``proj_size``), suffix
  ``_reverse`` for the backward direction, every one U(+-1/sqrt(hidden_size));
- keras (``LSTM``/``GRU`` and ``Bidirectional``): ``<name>/lstm_cell/kernel`` (in, G*u)
  glorot_uniform, ``recurrent_kernel`` orthogonal, ``bias`` zeros with the LSTM forget
  slice one (``unit_forget_bias``) and a GRU's (2, 3u) with ``reset_after``.

Initializer overrides: ``weight_init`` (input weights: weight_ih / kernel),
``recurrent_init`` (weight_hh / recurrent_kernel), ``bias_init`` (all biases),
``projection_init`` (LSTM weight_hr). With a fan-dependent ``bias_init`` under keras and
``unit_forget_bias``, Keras calls the initializer on the (u,) and (2u,) pieces around the
forget slice (their own fans, and the same seed, so the c-gate piece repeats the i-gate
values scaled); weightinit draws the whole bias once.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field
from weightinit.core.conventions import Override
from weightinit.core.layers.base import (
    IGNORED,
    Count,
    Expansion,
    InitField,
    LayerBase,
    Size,
    TensorPlan,
    check,
)
from weightinit.core.layers.tensors import planned, renamed


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
        rules = ctx.convention.recurrent
        plans: list[TensorPlan] = []
        for k in range(self.num_layers):
            if k == 1:  # every layer of the stack has the first one's tensors
                ctx.expect(len(plans) * (self.num_layers - 1))
            inputs = self.input_size if k == 0 else self.output_size() * self.directions
            slots = rules.slots(
                self.gates, inputs, self.hidden_size, self.output_size(), self.bias,
                self.split_bias(), self.forget_bias(ctx), self.projection_size(),
            )
            for direction in range(self.directions):
                plans.extend(
                    renamed(plan, ctx.prefix + rules.path(
                        self.name, self.cell, k, direction, self.num_layers,
                        self.bidirectional, slot.name))
                    for slot, plan in zip(slots, planned(ctx, self, slots), strict=True)
                )
        return plans

    def check_options(self, ctx: Expansion) -> None:
        """Reject options the convention's framework does not have."""

    def split_bias(self) -> bool:
        """Whether input and recurrent biases are kept apart in one tensor (GRU)."""
        return False

    def forget_bias(self, ctx: Expansion) -> tuple[Override, ...]:
        """Overrides of the bias after its initializer (LSTM's forget gate)."""
        return ()

    def projection_size(self) -> int:
        """The size of an output projection (LSTM proj_size), 0 for none."""
        return 0


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
        rules = ctx.convention.recurrent
        if rules.projection is not None:
            check(
                self.proj_size < self.hidden_size, (*ctx.loc, "proj_size"),
                f"proj_size ({self.proj_size}) must be smaller than hidden_size "
                f"({self.hidden_size})",
            )
        else:
            check(
                self.proj_size == 0, (*ctx.loc, "proj_size"), "Keras' LSTM has no proj_size"
            )
        check(
            rules.unit_forget_bias or not self.unit_forget_bias, (*ctx.loc, "unit_forget_bias"),
            "torch's LSTM has no unit_forget_bias; give bias_init or use keras",
        )
        check(
            self.proj_size > 0 or self.projection_init is None,
            (*ctx.loc, "projection_init"), "projection_init needs proj_size > 0",
        )

    def forget_bias(self, ctx: Expansion) -> tuple[Override, ...]:
        return ctx.convention.recurrent.forget_bias(self.hidden_size, self.unit_forget_bias)

    def projection_size(self) -> int:
        return self.proj_size


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
            ctx.convention.recurrent.reset_before or self.reset_after,
            (*ctx.loc, "reset_after"),
            "torch's GRU always applies the reset gate after the recurrent matmul "
            "(reset_after true)",
        )

    def split_bias(self) -> bool:
        return self.reset_after
