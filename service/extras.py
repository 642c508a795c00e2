"""Optional dependencies: a missing one is one line naming the extra to install."""

from __future__ import annotations

import importlib.util


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def require(module: str, extra: str, feature: str) -> None:
    """Raise ``MissingExtra`` unless ``module`` can be imported (nothing is imported)."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtra(f"{feature} needs {module}: pip install 'weightinit[{extra}]'")
