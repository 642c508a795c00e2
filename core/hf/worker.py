"""The tracing worker: ``python -m weightinit.core.hf.worker``.

Reads one JSON request per line on stdin (a ``huggingface`` source and the request's
limits), traces it (``core.hf.tracing``: torch and transformers are imported here, in
this process only) and writes one JSON line per request on its stdout: ``{"model": ...}``
(``core.hf.traced.model_to_json``) or ``{"error": {"kind", "loc", "msg"}}``. Exits at the
end of its input. Whatever torch or transformers print goes to stderr, so the answers
on stdout stay one line each.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from weightinit.core.errors import LimitError, SpecError
from weightinit.core.hf.errors import HF_EXTRA_MESSAGE, ExtraMissing


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """The reply to one request: the traced model, or the refusal."""
    try:
        try:
            from weightinit.core.hf.tracing import trace_source
        except ImportError:
            raise ExtraMissing(("huggingface",), HF_EXTRA_MESSAGE) from None
        from weightinit.core.hf.traced import model_to_json

        model = trace_source(request["config"], request.get("architecture"),
                             request["init_recipe"], request["max_tensors"],
                             request["max_parameters"])
        return {"model": model_to_json(model)}
    except SpecError as error:
        kind = ("ExtraMissing" if isinstance(error, ExtraMissing)
                else "LimitError" if isinstance(error, LimitError) else "SpecError")
        return {"error": {"kind": kind, "loc": list(error.loc), "msg": error.msg}}
    except Exception as error:  # a bug or an unexpected failure: the parent raises it
        return {"error": {"kind": "internal", "loc": ["huggingface"],
                          "msg": f"{type(error).__name__}: {error}"}}


def serve(requests: TextIO, replies: TextIO) -> None:
    for line in requests:
        if line.strip():
            replies.write(json.dumps(answer(json.loads(line))) + "\n")
            replies.flush()


def main() -> None:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr
    sys.stdout = sys.stderr
    serve(sys.stdin, replies)


if __name__ == "__main__":
    main()
