"""weightinit's engine: deterministic, streamed model-weight initialization.

    spec = Spec.model_validate(json)          # the request (layers, seed, convention, dtype)
    plan = build_plan(spec)                   # every tensor, resolved; nothing generated
    plan_document(plan)                       # the plan as JSON (fans, expected variance)
    write_file(plan, "model.safetensors")     # generate and write, in bounded chunks
    ChunkStream(plan)                         # ordered chunks to stream anywhere
    verify_file(plan, "model.safetensors")    # bit-for-bit check against the spec

No web framework is imported here; ``service/`` is the HTTP layer on top. Names are
imported on first use, so a process that needs one module of the engine (the client's
reader, the dtype table) does not load the planner and generator with it
(``core.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from weightinit.core.lazy import lazy_getattr

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "LimitError": "weightinit.core.errors",
    "SpecError": "weightinit.core.errors",
    "ChunkStream": "weightinit.core.generate",
    "REGISTRY": "weightinit.core.initializers",
    "catalogue": "weightinit.core.initializers",
    "Limits": "weightinit.core.plan",
    "Plan": "weightinit.core.plan",
    "build_plan": "weightinit.core.plan",
    "generate_report": "weightinit.core.report",
    "plan_document": "weightinit.core.report",
    "report_document": "weightinit.core.report",
    "Verification": "weightinit.core.safetensors_io.files",
    "verify_file": "weightinit.core.safetensors_io.files",
    "write_file": "weightinit.core.safetensors_io.files",
    "Observer": "weightinit.core.safetensors_io.writer",
    "file_size": "weightinit.core.safetensors_io.writer",
    "header_bytes": "weightinit.core.safetensors_io.writer",
    "stream_bytes": "weightinit.core.safetensors_io.writer",
    "Spec": "weightinit.core.spec",
}

__all__ = [
    "REGISTRY",
    "ChunkStream",
    "LimitError",
    "Limits",
    "Observer",
    "Plan",
    "Spec",
    "SpecError",
    "Verification",
    "build_plan",
    "catalogue",
    "file_size",
    "generate_report",
    "header_bytes",
    "plan_document",
    "report_document",
    "stream_bytes",
    "verify_file",
    "write_file",
]

if TYPE_CHECKING:
    from weightinit.core.errors import LimitError, SpecError
    from weightinit.core.generate import ChunkStream
    from weightinit.core.initializers import REGISTRY, catalogue
    from weightinit.core.plan import Limits, Plan, build_plan
    from weightinit.core.report import generate_report, plan_document, report_document
    from weightinit.core.safetensors_io.files import Verification, verify_file, write_file
    from weightinit.core.safetensors_io.writer import (
        Observer,
        file_size,
        header_bytes,
        stream_bytes,
    )
    from weightinit.core.spec import Spec


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
