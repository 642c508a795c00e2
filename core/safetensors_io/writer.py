"""The one writer of safetensors files: header from the plan, then streamed tensor data.

The header depends only on names, dtypes, shapes and metadata, all known from the plan,
so it is written before any value exists and the exact file size is known up front
(``8 + header + data``). Layout rules (the safetensors format): offsets tile
the data section in file order, the JSON header is space-padded to a multiple of 8 so
data starts aligned, ``__metadata__`` holds strings only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from weightinit.core.conventions import convention_of
from weightinit.core.dtypes import SAFETENSORS_DTYPE
from weightinit.core.generate import Chunk
from weightinit.core.plan import Plan
from weightinit.core.safetensors_io.header import MAX_HEADER_BYTES
from weightinit.core.spec import canonical_json
from weightinit.core.stats import Moments


@functools.cache  # importlib.metadata reads the installed files: ~1 ms a call
def package_version() -> str:
    try:
        return version("weightinit")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0+unknown"


def expected_statistics(plan: Plan) -> dict[str, dict[str, Any]]:
    """Per tensor: layer, initializer, fans and expected mean/variance (for metadata)."""
    return {
        output.name: {
            "layer": output.plan.layer,
            "initializer": output.plan.init.config["name"],
            "fan_in": output.plan.fans.fan_in,
            "fan_out": output.plan.fans.fan_out,
            "expected_mean": output.plan.init.expected_mean,
            "expected_variance": output.plan.init.expected_variance,
        }
        for output in plan.outputs
    }


def file_metadata(plan: Plan) -> dict[str, str]:
    """The header's ``__metadata__``, all strings: the canonical spec (its model part, so
    the file says how to make it again; ``select``/``shard`` say which part of it the file
    holds), expected statistics and identity. Nothing names the package version: the
    file's bytes are a function of (algorithm, spec, selection) only."""
    spec = plan.spec
    metadata = {
        "spec": canonical_json(spec.model_part()).decode(),
        "algorithm": spec.algorithm,
        "seed": str(spec.seed),
        "spec_sha256": plan.spec_sha256,
        "convention": spec.convention,
        "expected_stats": json.dumps(expected_statistics(plan), separators=(",", ":")),
    }
    file_format = convention_of(spec.convention).file_format
    if file_format is not None:
        metadata["format"] = file_format  # what the framework's loaders look for
    if spec.select is not None:
        metadata["select"] = json.dumps(spec.selection(), separators=(",", ":"))
    if spec.shard is not None:
        metadata["shard"] = json.dumps(spec.shard.model_dump(), separators=(",", ":"))
    regions = region_metadata(plan)
    if regions:
        metadata["regions"] = json.dumps(regions, separators=(",", ":"))
    return metadata


def region_metadata(plan: Plan) -> dict[str, dict[str, list[int]]]:
    """For each tensor the file holds only part of: the region (``offset``, ``shape``)
    and the whole tensor's ``full_shape``, so a part is never taken for a whole."""
    return {
        output.name: {"offset": list(output.region_offset), "shape": list(output.shape),
                      "full_shape": list(output.plan.shape)}
        for output in plan.outputs if output.partial
    }


def header_bytes(plan: Plan, metadata: dict[str, str] | None = None) -> bytes:
    """The 8-byte length plus the JSON header, padded with spaces to a multiple of 8."""
    header: dict[str, Any] = {"__metadata__": file_metadata(plan) if metadata is None else metadata}
    for output in plan.outputs:
        header[output.name] = {
            "dtype": SAFETENSORS_DTYPE[output.plan.dtype],
            "shape": list(output.shape),
            "data_offsets": [output.offset, output.offset + output.nbytes],
        }
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    if len(text) > MAX_HEADER_BYTES:
        raise ValueError(f"safetensors header of {len(text)} bytes exceeds {MAX_HEADER_BYTES}")
    return struct.pack("<Q", len(text)) + text


def file_size(plan: Plan, header: bytes | None = None) -> int:
    """Exact size of the file in bytes, known before generating."""
    return len(header if header is not None else header_bytes(plan)) + plan.total_bytes


@dataclass
class TensorObservation:
    """What was observed of one tensor's bytes while streaming it."""

    moments: Moments = field(default_factory=Moments)
    sha256: Any = field(default_factory=hashlib.sha256)


@dataclass
class Observer:
    """Accumulates per-tensor moments and sha256s and the whole file's sha256.

    Each sha256 is a pass over the bytes at about 2 GB/s (SHA-NI), as much CPU as
    generating a bfloat16 normal: ``tensor_sha256=False`` keeps only the file's, for
    callers that make no report (``write_file`` without statistics).
    """

    file_sha256: Any = field(default_factory=hashlib.sha256)
    tensors: dict[str, TensorObservation] = field(default_factory=dict)
    tensor_sha256: bool = True

    def header(self, data: bytes) -> None:
        self.file_sha256.update(data)

    def chunk(self, chunk: Chunk) -> None:
        buffer = chunk.buffer
        self.file_sha256.update(buffer)
        if not self.tensor_sha256 and chunk.moments is None:
            return
        observed = self.tensors.setdefault(chunk.output.name, TensorObservation())
        if self.tensor_sha256:
            observed.sha256.update(buffer)
        if chunk.moments is not None:
            observed.moments = observed.moments.merge(chunk.moments)


def stream_bytes(
    header: bytes, chunks: Iterator[Chunk], observer: Observer | None = None
) -> Iterator[bytes | memoryview]:
    """The file as a sequence of buffers: header, then each chunk (observed on the way)."""
    if observer is not None:
        observer.header(header)
    yield header
    for chunk in chunks:
        if observer is not None:
            observer.chunk(chunk)
        yield chunk.buffer
