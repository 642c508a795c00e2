"""The conventions a spec can name (``torch``, ``keras``): one object each that owns its
framework's tensor names, weight layouts and default initializers
(``core.conventions.base``). ``convention_of`` looks one up from the spec's string."""

from __future__ import annotations

from weightinit.core.conventions.base import Convention, ConventionName, Override, Slot
from weightinit.core.conventions.keras_convention import KERAS
from weightinit.core.conventions.torch_convention import TORCH

CONVENTIONS: dict[str, Convention] = {TORCH.name: TORCH, KERAS.name: KERAS}


def convention_of(name: str) -> Convention:
    """The convention a spec names (raises ``ValueError`` for any other name)."""
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown convention {name!r}: torch or keras") from None


__all__ = ["CONVENTIONS", "KERAS", "TORCH", "Convention", "ConventionName", "Override", "Slot",
           "convention_of"]
