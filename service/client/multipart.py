"""An incremental ``multipart/mixed`` reader: parts come out as readable streams.

``POST /v1/init`` with ``Accept: multipart/mixed`` sends the safetensors file as the
first part and the JSON report as the second (RFC 2046 §5.1). The parsers at hand either
hold the whole body in memory (``email``, requests-toolbelt) or take only form-data, so
this one reads a part straight through: a part with a ``Content-Length`` is copied
without being scanned; one without is scanned for the boundary as it passes.
"""

from __future__ import annotations

import json
from email.message import Message
from typing import Any

from weightinit.service.client.http import Response
from weightinit.service.client.receive import ProtocolError, Source

FILL_BYTES = 1 << 20
MAX_PART_HEADER_BYTES = 64 << 10


def boundary_of(content_type: str) -> bytes:
    """The ``boundary`` parameter of a ``multipart/*`` Content-Type."""
    message = Message()
    message["Content-Type"] = content_type
    if message.get_content_maintype() != "multipart":
        raise ProtocolError(f"expected a multipart response, got {content_type!r}")
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ProtocolError(f"multipart response without a boundary: {content_type!r}")
    return boundary.encode("ascii")


class Part:
    """One part: its headers (lower-case names) and ``readinto`` over its body."""

    def __init__(self, reader: MultipartReader, headers: dict[str, str]) -> None:
        self._reader = reader
        self.headers = headers
        length = headers.get("content-length", "")
        self.content_length: int | None = int(length) if length.isdigit() else None
        self._remaining = self.content_length
        self.done = self._remaining == 0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "text/plain").split(";")[0].strip().lower()

    def readinto(self, buffer: memoryview) -> int:
        """Up to ``len(buffer)`` bytes of the body; 0 once the part is over."""
        if self.done or not len(buffer):
            return 0
        if self._remaining is not None:
            count = self._reader.read_known(buffer[: self._remaining])
            self._remaining -= count
            if not self._remaining:
                self.done = True
            return count
        count = self._reader.read_until_boundary(buffer)
        if not count:
            self.done = True
        return count

    def read(self) -> bytes:
        """The rest of the body (for small parts such as the JSON report)."""
        chunks = bytearray()
        scratch = memoryview(bytearray(FILL_BYTES))
        while count := self.readinto(scratch):
            chunks += scratch[:count]
        return bytes(chunks)


class MultipartReader:
    """Reads the parts of a ``multipart/*`` body from ``source``, one after the other."""

    def __init__(self, source: Source, content_type: str) -> None:
        self._source = source
        boundary = boundary_of(content_type)
        self._dash_boundary = b"--" + boundary
        self._delimiter = b"\r\n--" + boundary
        self._buffer = bytearray()
        self._scratch = memoryview(bytearray(FILL_BYTES))
        self._eof = False
        self._started = False
        self._part: Part | None = None
        self._closed = False

    def _fill(self) -> bool:
        """Append what the source has next to the lookahead buffer; False at its end."""
        if self._eof:
            return False
        count = self._source.readinto(self._scratch)
        if not count:
            self._eof = True
            return False
        self._buffer += self._scratch[:count]
        return True

    def _need(self, nbytes: int) -> None:
        while len(self._buffer) < nbytes:
            if not self._fill():
                raise ProtocolError("multipart body ended inside a delimiter or headers")

    def _take(self, buffer: memoryview, count: int) -> int:
        """Move the first ``count`` lookahead bytes into ``buffer`` (one copy)."""
        with memoryview(self._buffer) as lookahead:
            buffer[:count] = lookahead[:count]
        del self._buffer[:count]
        return count

    def read_known(self, buffer: memoryview) -> int:
        """Body bytes of a part with a known length: lookahead first, then the socket."""
        if self._buffer:
            return self._take(buffer, min(len(buffer), len(self._buffer)))
        count = self._source.readinto(buffer)
        if not count:
            raise ProtocolError("multipart body ended inside a part")
        return count

    def read_until_boundary(self, buffer: memoryview) -> int:
        """Body bytes of a part of unknown length, stopping before the next delimiter."""
        keep = len(self._delimiter) - 1  # a delimiter may straddle two reads
        while True:
            found = self._buffer.find(self._delimiter)
            available = found if found >= 0 else max(0, len(self._buffer) - keep)
            if available or found >= 0:
                return self._take(buffer, min(available, len(buffer)))
            if not self._fill():
                raise ProtocolError("multipart body ended without its closing delimiter")

    def _skip_to_first_delimiter(self) -> None:
        """Drop the preamble, up to and including the first ``--boundary``."""
        while True:
            if self._buffer.startswith(self._dash_boundary):
                del self._buffer[: len(self._dash_boundary)]
                return
            found = self._buffer.find(self._delimiter)
            if found >= 0:
                del self._buffer[: found + len(self._delimiter)]
                return
            if len(self._buffer) > MAX_PART_HEADER_BYTES:
                raise ProtocolError("no multipart delimiter in the first 64 KiB")
            if not self._fill():
                raise ProtocolError("multipart body without any delimiter")

    def _after_delimiter(self) -> bool:
        """After ``--boundary``: True if a part follows, False at the closing ``--``."""
        self._need(2)
        if self._buffer.startswith(b"--"):
            self._closed = True
            return False
        while True:  # transport padding (spaces, tabs) may precede the line end
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                if self._buffer[:end].strip(b" \t"):
                    raise ProtocolError("garbage after a multipart delimiter")
                del self._buffer[: end + 2]
                return True
            if len(self._buffer) > MAX_PART_HEADER_BYTES or not self._fill():
                raise ProtocolError("unterminated multipart delimiter line")

    def _headers(self) -> dict[str, str]:
        while True:
            if self._buffer.startswith(b"\r\n"):  # a part with no headers
                del self._buffer[:2]
                return {}
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buffer) > MAX_PART_HEADER_BYTES or not self._fill():
                raise ProtocolError("unterminated multipart part headers")
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        headers = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(f"malformed multipart header line {line!r}")
            headers[name.strip().lower()] = value.strip()
        return headers

    def next_part(self) -> Part | None:
        """The next part (the previous one is skipped if unread), or None at the end."""
        if self._closed:
            return None
        if not self._started:
            self._started = True
            self._skip_to_first_delimiter()
        else:
            if self._part is not None and not self._part.done:
                self._part.read()
            self._need(len(self._delimiter))
            if not self._buffer.startswith(self._delimiter):
                raise ProtocolError("multipart part longer than its Content-Length")
            del self._buffer[: len(self._delimiter)]
        if not self._after_delimiter():
            return None
        self._part = Part(self, self._headers())
        return self._part


class InitBody:
    """A ``/v1/init`` answer: the safetensors ``file`` (the whole body, or part 1 of a
    ``multipart/mixed`` one) and its declared ``content_length``; then ``report()``."""

    def __init__(self, response: Response) -> None:
        self.file: Source = response
        self.content_length = response.content_length
        self._reader: MultipartReader | None = None
        content_type = response.header("Content-Type") or ""
        if content_type.startswith("multipart/"):
            self._reader = MultipartReader(response, content_type)
            part = self._reader.next_part()
            if part is None:
                raise ProtocolError("multipart response without parts")
            self.file, self.content_length = part, part.content_length

    def report(self) -> dict[str, Any] | None:
        """The JSON report of part 2 (None for a plain file); once the file is read."""
        if self._reader is None:
            return None
        part = self._reader.next_part()
        if part is None:
            raise ProtocolError("multipart response without its report part")
        return json.loads(part.read())
