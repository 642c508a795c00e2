"""What a command refuses: a spec that does not validate (shown at its file's lines) or
another command-line mistake. Both exit 2 with a message, never a traceback; kept apart
from the commands so a command that needs no engine (``pretrained --server``) can be
run without importing it."""

from __future__ import annotations

from typing import Any

from weightinit.service.json_lines import line_of


class InvalidSpec(Exception):
    """A spec file that does not validate: ``details`` as the HTTP API gives them, and the
    file (``source``: its name and text) so each can be shown as ``file:line``."""

    def __init__(self, details: list[dict[str, Any]], source: tuple[str, str] | None = None
                 ) -> None:
        super().__init__(details)
        self.details = details
        self.source = source

    def lines(self) -> list[str]:
        """One ``spec.json:7: layers.0.weight_init: ...`` line per error."""
        out = []
        for item in self.details:
            loc = ".".join(str(part) for part in item["loc"]) or "the spec"
            where = "invalid spec"
            if self.source is not None:
                name, text = self.source
                line = line_of(text, item["loc"])
                where = f"{name}:{line}" if line is not None else name
            out.append(f"{where}: {loc}: {item['msg']}")
        return out


class Refusal(Exception):
    """A command-line mistake that is not about the spec's content (exit 2, one line)."""
