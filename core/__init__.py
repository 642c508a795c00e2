"""weightinit's engine: deterministic, streamed model-weight initialization.

    spec = Spec.model_validate(json)          # the request (layers, seed, convention, dtype)
    plan = build_plan(spec)                   # every tensor, resolved; nothing generated
    plan_document(plan)                       # the plan as JSON (fans, expected variance)
    write_file(plan, "model.safetensors")     # generate and write, in bounded chunks
    ChunkStream(plan)                         # ordered chunks to stream anywhere
    verify_file(plan, "model.safetensors")    # bit-for-bit check against the spec

No web framework is imported here; ``service/`` is the HTTP layer on top.
"""

from weightinit.core.errors import LimitError, SpecError
from weightinit.core.generate import ChunkStream
from weightinit.core.initializers import REGISTRY, catalogue
from weightinit.core.plan import Limits, Plan, build_plan
from weightinit.core.report import generate_report, plan_document, report_document
from weightinit.core.safetensors_io.files import Verification, verify_file, write_file
from weightinit.core.safetensors_io.writer import Observer, file_size, header_bytes, stream_bytes
from weightinit.core.spec import Spec

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
