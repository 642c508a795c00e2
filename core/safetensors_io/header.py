"""The one reader of safetensors headers: the 8-byte length, the JSON object, the layout.

Used wherever a safetensors file or body is read back (``verify_file``, the client's
receive path), so the checks a header must pass live in one place. The writer is
``weightinit.core.safetensors_io.writer``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Protocol

MAX_HEADER_BYTES = 100_000_000  # the safetensors loaders' own limit


class HeaderError(ValueError):
    """Bytes that do not start with a well-formed safetensors header."""


class Readable(Protocol):
    def readinto(self, buffer: memoryview) -> int | None: ...


@dataclass(frozen=True)
class Layout:
    """A safetensors file's header: its bytes and the tensors' byte ranges."""

    header: bytes  # the 8-byte length and the JSON
    entries: dict[str, dict[str, Any]]
    metadata: dict[str, str]

    @property
    def data_bytes(self) -> int:
        return max((e["data_offsets"][1] for e in self.entries.values()), default=0)

    @property
    def file_bytes(self) -> int:
        return len(self.header) + self.data_bytes

    def in_data_order(self) -> list[tuple[str, dict[str, Any]]]:
        return sorted(self.entries.items(), key=lambda item: item[1]["data_offsets"][0])


def read_exact(source: Readable, nbytes: int) -> bytearray:
    """Exactly ``nbytes`` from ``source``, or ``HeaderError`` if it ends first."""
    buffer = bytearray(nbytes)
    view = memoryview(buffer)
    filled = 0
    while filled < nbytes:
        count = source.readinto(view[filled:])
        if not count:
            raise HeaderError(f"ended after {filled} of {nbytes} expected bytes")
        filled += count
    return buffer


def parse_header(header: bytes) -> Layout:
    """Parse the 8-byte length plus JSON header of a safetensors file."""
    try:
        document = json.loads(bytes(header[8:]))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError included
        raise HeaderError(f"unreadable safetensors header: {error}") from None
    if not isinstance(document, dict):
        raise HeaderError("safetensors header is not a JSON object")
    metadata = document.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise HeaderError("safetensors __metadata__ is not a JSON object")
    return Layout(bytes(header), document, metadata)


def read_header(source: Readable) -> Layout:
    """Read the header off the front of a file or body (the data stays unread)."""
    try:
        prefix = read_exact(source, 8)
    except HeaderError:
        raise HeaderError("too short to be safetensors (no 8-byte header length)") from None
    (length,) = struct.unpack("<Q", prefix)
    if length > MAX_HEADER_BYTES:
        raise HeaderError(f"safetensors header of {length} bytes: over the "
                          f"{MAX_HEADER_BYTES}-byte limit, not a safetensors file")
    return parse_header(bytes(prefix) + bytes(read_exact(source, length)))
