"""What a convention is: the names, layouts and default initializers of one framework.

A ``Convention`` answers every question a layer would otherwise branch on: its tensors'
names, the layout of their axes (``layout``, from ``core.fans``) and the initializer each
gets when the request gives none. Layers describe what they are (sizes, options) and ask
the spec's convention what that becomes; ``TORCH`` and ``KERAS`` are the two instances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from weightinit.core.fans import Fans, Layout
from weightinit.core.initializers import Initializer, Ones, Zeros

ConventionName = Literal["torch", "keras"]

ZEROS = Zeros()
ONES = Ones()


@dataclass(frozen=True)
class Override:
    """Elements ``[start, stop)`` (flat index) set to ``value`` after the initializer."""

    start: int
    stop: int
    value: float


@dataclass(frozen=True)
class Slot:
    """One tensor a convention lays out for a layer, in planning order.

    ``name`` is the tensor's name under its layer; ``init_field`` the layer field that
    overrides ``default``. ``fans`` replaces the shape rule's fans (an einsum's axes);
    ``weight_fans`` draws it with the fans of the tensor planned just before it (torch
    biases take their weight's fan_in). ``overrides`` set part of it after the initializer.
    """

    role: str
    name: str
    shape: tuple[int, ...]
    default: Initializer
    init_field: str
    fans: Fans | None = None
    weight_fans: bool = False
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class DenseRules:
    """Dense and convolution layers: the weight's name, both defaults, and whether the
    bias is drawn with the weight's fans (torch) or its own (Keras)."""

    weight: str
    weight_init: Initializer
    bias_init: Initializer
    bias_weight_fans: bool
    grouped_transposed: bool  # a transposed convolution may have groups


@dataclass(frozen=True)
class NormRules:
    """Normalization layers: names of the scale, shift and running statistics; the
    counter torch keeps (``None`` when there is none); whether the statistics are
    optional. The defaults are constants, the same in both frameworks: scales one, shifts
    zero, running means zero, running variances one."""

    scale: str
    rms_scale: str
    shift: str
    running_mean: str
    running_var: str
    counter: str | None
    optional_running_stats: bool
    scale_init: Initializer = ONES
    shift_init: Initializer = ZEROS
    mean_init: Initializer = ZEROS
    var_init: Initializer = ONES
    counter_init: Initializer = ZEROS


@dataclass(frozen=True)
class EmbeddingRules:
    """The embedding table's name and default."""

    table: str
    init: Initializer


class RecurrentRules:
    """LSTM/GRU tensors of one layer of a stack and one direction, and their names.

    ``lstm_gates`` is the LSTM gate order along the gated axis (``f`` the forget gate);
    ``projection`` the LSTM projection's name where the framework has one;
    ``unit_forget_bias`` whether the framework has that option (on by default);
    ``reset_before`` whether a GRU may apply the reset gate before the recurrent matmul.
    """

    lstm_gates: str
    projection: str | None
    unit_forget_bias: bool
    reset_before: bool

    def slots(self, gates: int, inputs: int, hidden: int, outputs: int, bias: bool,
              split_bias: bool, forget: tuple[Override, ...],
              projection: int) -> list[Slot]:
        """The tensors of one layer and direction: ``gates`` blocks of ``hidden`` units
        reading ``inputs`` features and ``outputs`` recurrent ones; ``split_bias`` keeps
        input and recurrent biases apart (a GRU's reset_after); ``forget`` the overrides
        of the bias; ``projection`` the LSTM projection size (0: none)."""
        raise NotImplementedError

    def path(self, layer: str, cell: str, index: int, direction: int, layers: int,
             bidirectional: bool, name: str) -> str:
        """Full name, under the prefix, of tensor ``name`` of layer ``index`` of a stack of
        ``layers`` and ``direction`` (1: backward)."""
        raise NotImplementedError

    def forget_bias(self, units: int, enabled: bool | None) -> tuple[Override, ...]:
        """The LSTM bias overrides: the forget gate's slice set to one where the framework
        does it (``enabled`` None: the framework's default)."""
        if not self.unit_forget_bias or enabled is False:
            return ()
        start = self.lstm_gates.index("f") * units
        return (Override(start, start + units, 1.0),)


class AttentionRules:
    """Multi-head attention: its tensors from its sizes. ``head_sizes``: the framework
    takes ``key_dim``/``value_dim``; ``bias_kv``: it has torch's ``add_bias_kv``."""

    head_sizes: bool
    bias_kv: bool

    def slots(self, embed: int, heads: int, kdim: int, vdim: int, key_dim: int | None,
              value_dim: int | None, bias: bool, add_bias_kv: bool) -> list[Slot]:
        """Every tensor of the layer, in the framework's order."""
        raise NotImplementedError


@dataclass(frozen=True)
class Convention:
    """One framework's names, layouts and defaults (``TORCH``, ``KERAS``).

    ``separator`` joins a layer path and a tensor name; ``repeat_prefix`` names the copies
    of a ``repeat`` (``{name}`` and ``{index}``); ``file_format`` is the safetensors
    ``format`` metadata its loaders look for; ``absolute_truncation`` says its truncated
    normal cuts at absolute bounds, so a bound-less ``truncated_normal`` earns a note.
    """

    name: ConventionName
    layout: Layout
    separator: str
    repeat_prefix: str
    file_format: str | None
    absolute_truncation: bool
    dense: DenseRules
    norm: NormRules
    embedding: EmbeddingRules
    recurrent: RecurrentRules
    attention: AttentionRules

    def repeat_name(self, name: str, index: int) -> str:
        """The name prefix of copy ``index`` of a ``repeat`` named ``name``."""
        return self.repeat_prefix.format(name=name, index=index)
