"""Writing a plan to a safetensors file, and verifying a file against a spec."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightinit.core.generate import ChunkStream
from weightinit.core.plan import Plan
from weightinit.core.safetensors_io.header import HeaderError, read_header
from weightinit.core.safetensors_io.writer import Observer, header_bytes, stream_bytes

# Files are written (and verified) with 1 MiB chunks rather than the stream default: the
# chunks in flight are the only part of a CLI's memory that grows with the work, and the
# issue's budget for `weightinit init` is 200 MB of peak RSS, ~180 MB of which is the
# interpreter with numpy, pydantic and the loaded numba kernels. Per-chunk overhead at
# 1 MiB is a few percent.
FILE_CHUNK_BYTES = 1 << 20

# Metadata that names the producer, not the content (files of releases before the header
# stopped naming it carry it): such a file with the same algorithm still verifies.
_PROVENANCE_KEYS = frozenset({"weightinit_version"})


def write_file(
    plan: Plan, path: str | os.PathLike[str], *, with_stats: bool = False,
    chunk_bytes: int = FILE_CHUNK_BYTES, progress: Callable[[int], object] | None = None,
) -> Observer:
    """Generate the plan into ``path`` (atomically: a temporary file renamed at the end,
    with the permissions the umask gives a new file); ``progress`` is called with the
    byte count of each buffer written."""
    target = Path(path)
    observer = Observer(tensor_sha256=with_stats)  # per-tensor hashes only for a report
    stream = ChunkStream(plan, with_stats=with_stats, chunk_bytes=chunk_bytes)
    handle, temporary = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            for buffer in stream_bytes(header_bytes(plan), iter(stream), observer):
                out.write(buffer)
                if progress is not None:
                    progress(len(buffer))
        # mkstemp creates 0600; a file written by a tool gets what the umask allows.
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return observer


@dataclass(frozen=True)
class Verification:
    """Outcome of ``verify``: ``ok``, else the first tensor (or header part) that differs."""

    ok: bool
    message: str
    tensor: str | None = None


def verify_file(plan: Plan, path: str | os.PathLike[str]) -> Verification:
    """Check that ``path`` holds exactly the bytes the plan produces, tensor by tensor."""
    path = Path(path)
    expected_header = header_bytes(plan)
    try:
        with path.open("rb") as handle:
            layout = read_header(handle)
    except OSError as error:  # missing, a directory, unreadable: a mismatch, not a crash
        return Verification(False, f"cannot read {path}: {error.strerror or error}")
    except HeaderError as error:
        return Verification(False, str(error))
    header: dict[str, Any] = {**layout.entries, "__metadata__": layout.metadata}
    # Parsed once (a header may list 100k tensors); its __metadata__ is file_metadata(plan).
    expected_entries = json.loads(expected_header[8:])
    for output in plan.outputs:
        entry = header.get(output.name)
        wanted = expected_entries[output.name]
        if entry != wanted:
            return Verification(
                False, f"{output.name}: header entry {entry} != expected {wanted}", output.name
            )
    extra = set(header) - {"__metadata__"} - {o.name for o in plan.outputs}
    if extra:
        return Verification(False, f"unexpected tensors in file: {sorted(extra)[:5]}")
    metadata = {k: v for k, v in header.get("__metadata__", {}).items()
                if k not in _PROVENANCE_KEYS}
    wanted_metadata = {k: v for k, v in expected_entries["__metadata__"].items()
                       if k not in _PROVENANCE_KEYS}
    if metadata != wanted_metadata:
        differing = sorted(k for k in set(metadata) | set(wanted_metadata)
                           if metadata.get(k) != wanted_metadata.get(k))
        return Verification(False, f"metadata differs in {differing}")
    data_start = len(layout.header)
    expected_size = data_start + plan.total_bytes
    size = path.stat().st_size
    if size != expected_size:
        return Verification(False, f"file is {size} bytes, expected {expected_size}")
    with path.open("rb") as handle:
        handle.seek(data_start)
        for chunk in ChunkStream(plan, chunk_bytes=FILE_CHUNK_BYTES):
            wanted_bytes = chunk.buffer
            got = handle.read(len(wanted_bytes))
            if got != wanted_bytes:
                return Verification(
                    False, f"{chunk.output.name}: bytes differ from what the spec produces",
                    chunk.output.name,
                )
    return Verification(True, f"{len(plan.outputs)} tensors, {plan.total_bytes} bytes match")


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``os.umask``
    can only be read by setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def carried_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The spec a weightinit file carries in its ``__metadata__``: the model part plus
    the ``select``/``shard`` that say which part of it the file holds. Raises ``OSError``
    for a file that cannot be read, ``HeaderError`` for one that is not safetensors or
    carries no spec (a file made before files carried their spec)."""
    with Path(path).open("rb") as handle:
        metadata = read_header(handle).metadata
    if "spec" not in metadata:
        raise HeaderError(f"{path} carries no weightinit spec in its __metadata__")
    try:
        spec = json.loads(metadata["spec"])
        for part in ("select", "shard"):
            if part in metadata:
                spec[part] = json.loads(metadata[part])
    except (TypeError, ValueError) as error:
        raise HeaderError(f"{path}: the spec in __metadata__ is not JSON: {error}") from None
    if not isinstance(spec, dict):
        raise HeaderError(f"{path}: the spec in __metadata__ is not a JSON object")
    return spec
