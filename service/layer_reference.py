"""``docs/layers.md``: the layer types and initializers of a spec, generated from the
schema and the registry (``python -m weightinit.service.layer_reference > docs/layers.md``;
a test checks the file is fresh)."""

from __future__ import annotations

from typing import Any, get_args


def _default(info: Any) -> str:
    return "required" if info.is_required() else f"`{info.default!r}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def layers_markdown() -> str:
    """The reference page, as markdown."""
    from weightinit.core.initializers import catalogue
    from weightinit.core.layers import LAYER_TYPES

    lines = ["# Layer types and initializers", "",
             "Generated from the spec's schema by `python -m weightinit.service.layer_reference`"
             " (do not edit by hand; `tests/test_docs_layers.py` checks it is fresh). "
             "`weightinit layers` and `weightinit initializers` print the same in the terminal.",
             "", "## Layer types", ""]
    for model in LAYER_TYPES:
        types = " / ".join(f"`{name}`" for name in get_args(model.model_fields["type"].annotation))
        lines += [f"### {types}", "", _cell(model.__doc__ or ""), "",
                  "| field | default | description |", "|---|---|---|"]
        for name, info in model.model_fields.items():
            if name == "type":
                continue
            lines.append(f"| `{name}` | {_default(info)} | {_cell(info.description or '')} |")
        lines.append("")
    lines += ["## Initializers", "", "| name | from | formula | parameters (default) |",
              "|---|---|---|---|"]
    for entry in catalogue():
        params = ", ".join(
            f"`{name}`" + ("" if name in entry["required"] else f" ({schema.get('default')!r})")
            for name, schema in entry["parameters"].items())
        lines.append(f"| `{entry['name']}` | {entry['origin']} | {_cell(entry['formula'])} | "
                     f"{params or '-'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(layers_markdown(), end="")
