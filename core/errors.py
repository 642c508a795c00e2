"""Errors the engine raises for bad input, each naming the offending field.

The service maps them to HTTP statuses (``status``); the CLI prints them. They carry a
``loc`` path in the request body, in the same shape as Pydantic's, so a client sees one
error format whichever layer found the problem.
"""

from __future__ import annotations

from collections.abc import Sequence

Loc = tuple[str | int, ...]


class SpecError(ValueError):
    """The request cannot be planned: ``loc`` names the field, ``msg`` says why."""

    status = 422
    code = "invalid_spec"

    def __init__(self, loc: Sequence[str | int], msg: str) -> None:
        super().__init__(f"{'.'.join(str(p) for p in loc) or '<body>'}: {msg}")
        self.loc: Loc = tuple(loc)
        self.msg = msg

    def details(self) -> list[dict[str, object]]:
        """The error as the ``details`` list of an error response."""
        return [{"loc": list(self.loc), "msg": self.msg}]


class LimitError(SpecError):
    """The request is valid but larger than this deployment allows (HTTP 413)."""

    status = 413
    code = "too_large"
