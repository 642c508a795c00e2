"""Errors of the ``huggingface`` source that are not about one field of the config."""

from __future__ import annotations

from weightinit.core.errors import SpecError

HF_EXTRA_MESSAGE = (
    "the huggingface source needs transformers and torch, which this installation does not "
    "have: install the extra, pip install 'weightinit[hf]'"
)


class ExtraMissing(SpecError):
    """transformers or torch is not installed: the request cannot be served here."""

    status = 422
    code = "extra_not_installed"


class TraceTimeout(SpecError):
    """Building the config's model on the meta device took longer than the limit: the
    worker was killed (HTTP 503, the request may succeed on a less loaded server)."""

    status = 503
    code = "trace_timeout"


class TraceFailed(SpecError):
    """The tracing worker died (killed, out of memory) before answering (HTTP 503)."""

    status = 503
    code = "trace_failed"
