"""What a module's own ``__init__`` sets its parameters to, read from its source.

A custom module (an ``*RMSNorm``, a class token, CLIP's ``logit_scale``, GPT-2's
``Conv1D``) has no layer type, but its constructor says how each parameter starts:
``nn.Parameter(torch.ones(n))``, ``torch.zeros``, ``torch.full(shape, v)``,
``torch.tensor(v)``, ``torch.randn``/``torch.rand``, ``torch.empty(...).normal_(std=s)``,
``torch.ones(n) * v``, or ``nn.init.normal_(self.weight, std=s)`` afterwards. This module
reads the ``__init__`` of the class and its bases with ``ast`` (nothing is executed) and
returns each parameter's initializer as a spec initializer. Values the source does not
spell out as numbers are looked up, never called: attributes of the module
(``self.config.logit_scale_init_value``, ``config.x`` as ``module.config.x``) and local
names assigned earlier in ``__init__`` from such values. A parameter whose start cannot be
read this way is absent from the result; the caller may then look at a real tensor's
values (a constant tensor is its constant) or report it as unplaced.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import operator
import textwrap
from typing import Any

Init = dict[str, Any]

_PARAMETER_CALLS = frozenset({"Parameter", "nn.Parameter", "torch.nn.Parameter"})
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_MATH = {"math.log": math.log, "math.sqrt": math.sqrt, "math.exp": math.exp,
         "np.log": math.log, "np.sqrt": math.sqrt}


class _Unknown(Exception):
    """An expression whose value or initializer the source does not determine."""


def _dotted(node: ast.AST) -> str:
    """``torch.nn.init.normal_`` for an attribute chain of names, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(node.id)
    return ".".join(reversed(parts))


def _short(name: str) -> str:
    """A callee's name without its ``torch.``/``nn.init.``/``init.`` qualifier."""
    return name.rsplit(".", 1)[-1]


class _Reader:
    """Evaluates the numeric expressions and initializer expressions of one ``__init__``
    for one module instance."""

    def __init__(self, module: Any, configs: tuple[Any, ...] = ()) -> None:
        self.module = module
        self.configs = configs
        self.local: dict[str, float] = {}

    def number(self, node: ast.AST) -> float:
        """The value of a numeric expression, or ``_Unknown``."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not (
            isinstance(node.value, bool)
        ):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self.number(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](self.number(node.left), self.number(node.right))
        if isinstance(node, ast.Call) and _dotted(node.func) in _MATH and len(node.args) == 1:
            return _MATH[_dotted(node.func)](self.number(node.args[0]))
        if isinstance(node, ast.Name) and node.id in self.local:
            return self.local[node.id]
        dotted = _dotted(node)
        if dotted:
            return self._attribute(dotted.split("."))
        raise _Unknown

    def _attribute(self, parts: list[str]) -> float:
        """``self.a.b``, a bare name the module holds as a plain number, or ``config.a``:
        the module's ``config`` or else the nearest enclosing module's (a submodule is
        handed its model's config and often does not keep it), read with getattr only."""
        if parts[0] == "self":
            return _number_at(self.module, parts[1:])
        if parts[0] == "config":
            own = (self.module.config,) if hasattr(self.module, "config") else ()
            for config in (*own, *self.configs):
                try:
                    return _number_at(config, parts[1:])
                except _Unknown:
                    continue
            raise _Unknown
        if len(parts) > 1:
            raise _Unknown
        return _number_at(self.module, parts)

    def _keywords(self, call: ast.Call, names: tuple[str, ...], defaults: tuple[float, ...],
                  skip: int) -> list[float]:
        """Positional (after ``skip``) and keyword numeric arguments, with defaults."""
        values = list(defaults)
        for index, arg in enumerate(call.args[skip:skip + len(names)]):
            values[index] = self.number(arg)
        for keyword in call.keywords:
            if keyword.arg in names:
                values[names.index(keyword.arg)] = self.number(keyword.value)
        return values

    def initializer(self, node: ast.AST, *, on_tensor: int = 0) -> Init:
        """The spec initializer of a tensor expression (``torch.ones(n) * 0.5``), or
        ``_Unknown``. ``on_tensor`` is how many leading arguments are the tensor itself
        (1 for ``nn.init.normal_(t, ...)``)."""
        if isinstance(node, ast.BinOp) and type(node.op) in (ast.Mult, ast.Div, ast.Add):
            return self._scaled(node)
        if not isinstance(node, ast.Call):
            raise _Unknown
        name = _short(_dotted(node.func)) if _dotted(node.func) else ""
        if isinstance(node.func, ast.Attribute) and not _dotted(node.func).startswith(
            ("torch.", "nn.", "init.")
        ):  # a method on a tensor expression: torch.empty(n).normal_(std=0.02)
            return self.in_place(node.func.attr, node, skip=0)
        if name in ("ones", "ones_like"):
            return {"name": "ones"}
        if name in ("zeros", "zeros_like"):
            return {"name": "zeros"}
        if name == "full" and len(node.args) >= 2:
            return _constant(self.number(node.args[1]))
        if name == "tensor" and node.args:
            return _constant(self.number(node.args[0]))
        if name in ("randn", "randn_like"):
            return {"name": "normal", "mean": 0.0, "std": 1.0}
        if name in ("rand", "rand_like"):
            return {"name": "uniform", "low": 0.0, "high": 1.0}
        if name.endswith("_"):  # nn.init.<fn>_(tensor, ...)
            return self.in_place(name, node, skip=on_tensor)
        raise _Unknown

    def _scaled(self, node: ast.BinOp) -> Init:
        """``torch.ones(n) * v`` (either side), ``torch.ones(n) / v``, ``zeros + v``."""
        for tensor, other in ((node.left, node.right), (node.right, node.left)):
            try:
                base = self.initializer(tensor)
            except _Unknown:
                continue
            value = self.number(other)
            start = {"ones": 1.0, "zeros": 0.0}.get(base["name"], base.get("value"))
            if start is None or (isinstance(node.op, ast.Div) and tensor is node.right):
                raise _Unknown
            return _constant(_BINARY[type(node.op)](start, value))
        raise _Unknown

    def in_place(self, method: str, call: ast.Call, skip: int) -> Init:
        """An in-place initializer (``normal_``, ``uniform_``, ``zero_``, ``fill_``,
        ``nn.init.trunc_normal_``, ``constant_``, ...) as a spec initializer."""
        if method in ("zero_", "zeros_"):
            return {"name": "zeros"}
        if method == "ones_":
            return {"name": "ones"}
        if method in ("fill_", "constant_"):
            (value,) = self._keywords(call, ("val",) if method == "constant_" else ("value",),
                                      (math.nan,), skip)
            if math.isnan(value):
                raise _Unknown
            return _constant(value)
        if method == "normal_":
            mean, std = self._keywords(call, ("mean", "std"), (0.0, 1.0), skip)
            return {"name": "normal", "mean": mean, "std": std}
        if method == "uniform_":
            low, high = self._keywords(call, ("a", "b") if skip else ("from", "to"),
                                       (0.0, 1.0), skip)
            return {"name": "uniform", "low": low, "high": high}
        if method == "trunc_normal_":
            mean, std, a, b = self._keywords(call, ("mean", "std", "a", "b"),
                                             (0.0, 1.0, -2.0, 2.0), skip)
            return {"name": "trunc_normal", "mean": mean, "std": std, "a": a, "b": b}
        raise _Unknown


def _number_at(value: Any, parts: list[str]) -> float:
    """The plain number at ``value.a.b`` (getattr only), or ``_Unknown``."""
    for part in parts:
        if not hasattr(value, part):
            raise _Unknown
        value = getattr(value, part)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Unknown
    return float(value)


def _constant(value: float) -> Init:
    if value == 1.0:
        return {"name": "ones"}
    if value == 0.0:
        return {"name": "zeros"}
    return {"name": "constant", "value": value}


def _target(node: ast.AST) -> str | None:
    """``weight`` for ``self.weight`` (or ``self.weight.data``), else None."""
    if isinstance(node, ast.Attribute) and node.attr == "data":
        node = node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
        node.value.id == "self"
    ):
        return node.attr
    return None


def _parameter_argument(node: ast.AST) -> ast.AST | None:
    """E of ``nn.Parameter(E)`` (a conditional ``nn.Parameter(E) if c else None`` too)."""
    if isinstance(node, ast.IfExp):
        return _parameter_argument(node.body)
    if isinstance(node, ast.Call) and _dotted(node.func) in _PARAMETER_CALLS and node.args:
        return node.args[0]
    return None


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements in source order, the bodies of if/with/for/try included."""
    flat: list[ast.stmt] = []
    for statement in body:
        flat.append(statement)
        for field in ("body", "orelse", "finalbody"):
            flat.extend(_statements(getattr(statement, field, []) or []))
    return flat


@functools.lru_cache(maxsize=512)
def _init_source(cls: type) -> ast.FunctionDef | None:
    """The parsed ``__init__`` a class defines itself, or None (inherited, or no source)."""
    function = cls.__dict__.get("__init__")
    if function is None:
        return None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, ast.FunctionDef) else None


def constructor_inits(module: Any, configs: tuple[Any, ...] = ()) -> dict[str, Init]:
    """{parameter name: spec initializer} for the parameters ``module``'s own class (and its
    bases, outside torch itself) create in ``__init__`` in a way the source determines.
    ``configs``: the configs of the enclosing modules, nearest first (for ``config.x``
    in a submodule that does not keep its config)."""
    reader = _Reader(module, configs)
    found: dict[str, Init] = {}
    for cls in reversed(type(module).__mro__):
        if cls.__module__.startswith("torch.") or cls is object:
            continue
        function = _init_source(cls)
        if function is None:
            continue
        reader.local = {}
        for statement in _statements(function.body):
            _read_statement(reader, statement, found)
    return found


def _read_statement(reader: _Reader, statement: ast.stmt, found: dict[str, Init]) -> None:
    """Record what one ``__init__`` statement sets (a parameter, a later in-place
    initializer, or a local number)."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        if isinstance(target, ast.Name):
            try:
                reader.local[target.id] = reader.number(statement.value)
            except _Unknown:
                reader.local.pop(target.id, None)
            return
        name = _target(target)
        argument = _parameter_argument(statement.value)
        if name is not None and argument is not None:
            _record(found, name, lambda: reader.initializer(argument))
        return
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return
    call = statement.value
    callee = _dotted(call.func)
    if _short(callee) == "register_parameter" and len(call.args) == 2 and isinstance(
        call.args[0], ast.Constant
    ) and (argument := _parameter_argument(call.args[1])) is not None:
        _record(found, str(call.args[0].value), lambda: reader.initializer(argument))
    elif callee.startswith(("nn.init.", "torch.nn.init.", "init.")) and call.args and (
        name := _target(call.args[0])
    ) is not None:
        _record(found, name, lambda: reader.initializer(call, on_tensor=1))
    elif isinstance(call.func, ast.Attribute) and call.func.attr.endswith("_") and (
        call.func.attr != "requires_grad_"
    ) and (name := _target(call.func.value)):  # self.weight.data.normal_(std=0.02)
        _record(found, name, lambda: reader.in_place(call.func.attr, call, skip=0))


def _record(found: dict[str, Init], name: str, read: Any) -> None:
    """The later statement wins; one the source does not determine makes it unknown."""
    try:
        found[name] = read()
    except (_Unknown, ValueError, ZeroDivisionError, OverflowError):
        found.pop(name, None)
