"""The plan as a table for the terminal: one row per tensor, then the totals.

``weightinit plan`` prints this by default and the plan JSON with ``--json``.
"""

from __future__ import annotations

import math
from typing import Any


def _initializer(config: dict[str, Any]) -> str:
    """``kaiming_uniform(nonlinearity=relu)``: the name and the parameters given a value
    other than nothing (every parameter is in the JSON)."""
    params = [f"{key}={value}" for key, value in config.items()
              if key != "name" and value is not None]
    return f"{config['name']}({', '.join(params)})" if params else str(config["name"])


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def plan_table(document: dict[str, Any], width: int = 60) -> str:
    """Rows of name, shape, dtype, initializer, std (the square root of the expected
    variance), then tensor, parameter and byte totals and the warnings."""
    rows = [("tensor", "shape", "dtype", "initializer", "std")]
    for tensor in document["tensors"]:
        variance = tensor.get("expected_variance")
        std = math.sqrt(variance) if isinstance(variance, float | int) else None
        initializer = _initializer(tensor["initializer"])
        if len(initializer) > width:
            initializer = initializer[: width - 3] + "..."
        rows.append((tensor["name"], "x".join(map(str, tensor["shape"])) or "scalar",
                     tensor["dtype"], initializer, _number(std)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(size) for cell, size in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * size for size in widths))
    lines.append("")
    lines.append(f"{len(document['tensors'])} tensors, {document['total_parameters']:,} "
                 f"parameters, {document['total_bytes']:,} bytes of data "
                 f"(algorithm {document['algorithm']}, spec sha256 "
                 f"{document['spec_sha256'][:12]}...)")
    for warning in document.get("warnings") or []:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)
