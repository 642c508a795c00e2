"""Public names that load on first use (PEP 562), for ``weightinit`` and ``weightinit.core``.

A package lists which module defines each public name; importing the package imports none
of them until one is asked for, so a process that needs one part (the CLI's ``--help``, the
client's reader) does not load the planner and generator with it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: imports the module ``exports`` names for
    an attribute on first access and keeps the value on the package."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
