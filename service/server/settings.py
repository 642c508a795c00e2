"""The service's settings: every limit and switch, from ``WEIGHTINIT_*`` environment variables.

``create_app(settings)`` takes a ``Settings`` object, so tests build apps with their own
limits; ``Settings()`` reads the environment (and nothing else: no ``.env`` file, so what
runs is what the deployment says).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from weightinit.core.plan import Limits

MIB = 1 << 20


class TokenSourceError(ValueError):
    """A token source is configured but holds no token."""


def _split_tokens(text: str) -> list[str]:
    """Tokens separated by commas or line breaks, blanks dropped."""
    return [t.strip() for t in text.replace("\n", ",").split(",") if t.strip()]


class Settings(BaseSettings):
    """Server address, request limits, streaming, auth, CORS and shutdown behaviour."""

    model_config = SettingsConfigDict(env_prefix="WEIGHTINIT_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="uvicorn worker processes")
    log_level: str = "info"

    # Request limits: everything over them is refused before any generation.
    max_body_bytes: int = Field(1 * MIB, ge=1, description="request body size, in bytes")
    max_tensors: int = Field(100_000, ge=1, description="tensors per request")
    max_parameters: int = Field(20_000_000_000, ge=1, description="parameters per request")
    max_depth: int = Field(8, ge=1, description="nesting depth of repeat layers")
    max_whole_tensor_elements: int = Field(
        1 << 22, ge=1,
        description="largest orthogonal/sparse tensor (materialised whole: ~350 bytes/element "
        "peak, so the default 4M elements stays within the 512 MiB memory budget)",
    )

    # Streaming: memory per stream is about stream_window * chunk_bytes, whatever the
    # client's speed (the window bounds the chunks generated ahead of the socket).
    max_concurrent_streams: int = Field(8, ge=1, description="per worker process (503)")
    max_streams_per_token: int = Field(4, ge=1, description="per token, per worker process (429)")
    chunk_bytes: int = Field(4 * MIB, ge=4096, description="bytes generated per task")
    stream_window: int = Field(4, ge=1, description="chunks generated ahead of the socket")
    retry_after_s: int = Field(5, ge=1, description="Retry-After when at capacity or draining")
    drain_timeout_s: float = Field(30.0, ge=0, description="SIGTERM: time for streams in flight")

    # Connections: what one client may hold before it is cut off (service.protocol).
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="request line plus headers, in bytes (431)")
    idle_timeout_s: float = Field(
        5.0, gt=0, description="keep-alive: a connection with no request in progress closes")
    header_timeout_s: float = Field(
        10.0, gt=0, description="a request's line and headers must arrive within this")
    body_timeout_s: float = Field(
        30.0, gt=0, description="a request's body must arrive within this after its headers")
    send_timeout_s: float = Field(
        30.0, gt=0, description="a response whose client reads nothing for this long is aborted")

    # /v1/diagnose materialises the model and pushes a probe batch through it: both the
    # memory (activations) and the work are bounded before anything is generated (413).
    diagnose_max_parameters: int = Field(
        4_000_000, ge=1, description="parameters of a model /v1/diagnose generates")
    diagnose_max_tensors: int = Field(4096, ge=1, description="tensors of a diagnosed model")
    diagnose_max_activation_elements: int = Field(
        4_000_000, ge=1, description="batch x the widest layer's inputs x receptive field")
    diagnose_max_work: int = Field(
        2_000_000_000, ge=1, description="batch x parameters: the probe's multiply-adds")

    # Authentication: off unless tokens are given (inline or as a mounted secret file).
    api_tokens: SecretStr = Field(SecretStr(""), description="comma-separated bearer tokens")
    api_tokens_file: Path | None = Field(None, description="file of tokens, one per line or comma")
    metrics_require_auth: bool = False

    # Browsers: no CORS headers at all unless origins are listed.
    cors_origins: str = Field("", description="comma-separated origins, or *")
    # DNS rebinding: a page on another name that resolves here sends its own Host.
    allowed_hosts: str = Field(
        "", description="comma-separated Host names (a leading *. for subdomains); empty = any")

    hf_trace_timeout_s: float = Field(
        120.0, gt=0, description="a huggingface config's model traced in the tracing worker "
        "(503 past it)")

    plan_cache_entries: int = Field(256, ge=0, description="validated requests kept, 0 = off")

    # The engine (also read by the CLI): same bytes either way, only the speed differs.
    generation_threads: int = Field(0, ge=0, description="generator threads, 0 = one per core")
    disable_numba: bool = Field(False, description="use the pure-numpy reference kernels")

    @field_validator("log_level")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    def limits(self) -> Limits:
        """The engine's limits for ``weightinit.core.build_plan``."""
        from weightinit.core.plan import Limits

        return Limits(
            max_tensors=self.max_tensors,
            max_parameters=self.max_parameters,
            max_depth=self.max_depth,
            max_whole_tensor_elements=self.max_whole_tensor_elements,
            hf_trace_seconds=self.hf_trace_timeout_s,
        )

    def configure_engine(self) -> None:
        """Hand the engine's process-wide switches to ``weightinit.core`` (which reads no
        environment itself)."""
        from weightinit.core import generate
        from weightinit.core.rng import kernels
        generate.configure_generation(self.generation_threads)
        kernels.use_numba(not self.disable_numba)

    def tokens(self) -> list[str]:
        """Every configured bearer token (empty: authentication is off).

        A token source that is configured but holds no token (an empty or
        whitespace-only file, ``WEIGHTINIT_API_TOKENS=","``) raises ``TokenSourceError``:
        starting with authentication silently off is worse than not starting.
        """
        inline = self.api_tokens.get_secret_value()
        tokens = _split_tokens(inline)
        if inline.strip() and not tokens:
            raise TokenSourceError("WEIGHTINIT_API_TOKENS is set but holds no token")
        if self.api_tokens_file is not None:
            from_file = _split_tokens(self.api_tokens_file.read_text())
            if not from_file:
                raise TokenSourceError(
                    f"the token file {self.api_tokens_file} (WEIGHTINIT_API_TOKENS_FILE) "
                    "holds no token")
            tokens += from_file
        return tokens

    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    def allowed_host_list(self) -> list[str]:
        return [host.strip().lower() for host in self.allowed_hosts.split(",") if host.strip()]
