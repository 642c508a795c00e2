"""weightinit: deterministic, streamed model-weight initialization (safetensors out).

    import weightinit

    spec = weightinit.Spec.model_validate(json_spec)
    plan = weightinit.build_plan(spec)
    weightinit.write_file(plan, "model.safetensors")
    weightinit.verify_file(plan, "model.safetensors")
    weightinit.Client("http://127.0.0.1:8000").init(json_spec, "model.safetensors")

The engine lives in ``weightinit.core`` (no web framework), the HTTP service, client and
CLI in ``weightinit.service``; framework adapters are ``weightinit.torch`` and
``weightinit.keras``. Names are imported on first use, so ``import weightinit`` stays
cheap (the CLI starts without loading the engine it does not need).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from weightinit.core.lazy import lazy_getattr

try:
    __version__ = version("weightinit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Spec": "weightinit.core.spec",
    "Plan": "weightinit.core.plan",
    "Limits": "weightinit.core.plan",
    "build_plan": "weightinit.core.plan",
    "write_file": "weightinit.core.safetensors_io.files",
    "verify_file": "weightinit.core.safetensors_io.files",
    "Verification": "weightinit.core.safetensors_io.files",
    "ChunkStream": "weightinit.core.generate",
    "plan_document": "weightinit.core.report",
    "report_document": "weightinit.core.report",
    "generate_report": "weightinit.core.report",
    "SpecError": "weightinit.core.errors",
    "LimitError": "weightinit.core.errors",
    "REGISTRY": "weightinit.core.initializers",
    "catalogue": "weightinit.core.initializers",
    "Client": "weightinit.service.client.client",
    "WeightinitError": "weightinit.service.client.client",
    "DownloadedFile": "weightinit.service.client.client",
}

__all__ = [
    "REGISTRY",
    "ChunkStream",
    "Client",
    "DownloadedFile",
    "LimitError",
    "Limits",
    "Plan",
    "Spec",
    "SpecError",
    "Verification",
    "WeightinitError",
    "__version__",
    "build_plan",
    "catalogue",
    "generate_report",
    "plan_document",
    "report_document",
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
    from weightinit.core.spec import Spec
    from weightinit.service.client.client import Client, DownloadedFile, WeightinitError


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)
