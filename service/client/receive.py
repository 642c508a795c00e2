"""Receiving a safetensors body: into a file (atomically) or into memory, fast.

A body is read with ``readinto`` straight into its final place: fresh anonymous memory
for arrays, a memory mapping of the output file otherwise, so each byte is copied once, from
the socket. sha256, when wanted, runs on a second thread behind the download. The
safetensors header is read first, so the exact size is known (for the progress bar and
to check the body is neither short nor long) whatever the transfer encoding.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mmap
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from weightinit.core.dtypes import BY_SAFETENSORS, DTypeInfo
from weightinit.core.safetensors_io import header
from weightinit.core.safetensors_io.header import Layout
from weightinit.service.client.http import ProtocolError
from weightinit.service.client.prefault import Prefaulter, address_of

CHUNK_BYTES = 32 << 20


class Source(Protocol):
    def readinto(self, buffer: memoryview) -> int: ...


class Progress(Protocol):
    def update(self, n: int) -> Any: ...


def read_exact(source: Source, nbytes: int) -> bytearray:
    """Exactly ``nbytes`` from ``source``, or ``ProtocolError`` if it ends first."""
    try:
        return header.read_exact(source, nbytes)
    except header.HeaderError as error:
        raise ProtocolError(f"body {error}") from None


def expect_end(source: Source) -> None:
    """Check nothing follows the file (a longer body means a different file)."""
    if source.readinto(memoryview(bytearray(1))):
        raise ProtocolError("body continues past the end of the safetensors data")


def parse_header(data: bytes) -> Layout:
    """Parse the 8-byte length plus JSON header of a safetensors body."""
    try:
        return header.parse_header(data)
    except header.HeaderError as error:
        raise ProtocolError(str(error)) from None


def read_layout(source: Source) -> Layout:
    """Read the header off the front of a body."""
    try:
        return header.read_header(source)
    except header.HeaderError as error:
        raise ProtocolError(str(error)) from None


class _RegionSink:
    """Bytes the body is read straight into, region by region (``_view``), with pages
    faulted in ahead of the reader (``_prefaulter``)."""

    _view: memoryview
    _prefaulter: Prefaulter | None = None

    def region(self, offset: int, nbytes: int) -> memoryview:
        return self._view[offset : offset + nbytes]

    def sha256(self) -> str:
        """sha256 of the bytes as received."""
        return hashlib.sha256(self._view).hexdigest()

    def close(self) -> None:
        """Stop faulting in pages (the bytes themselves stay)."""
        if self._prefaulter is not None:
            self._prefaulter.stop()


def fresh_buffer(nbytes: int) -> mmap.mmap | bytearray:
    """``nbytes`` of zeroed, writable memory whose pages are not touched yet: a private
    anonymous mapping (the kernel zeroes each page on its first write), where a
    ``bytearray`` would first memset every byte on the calling thread (about 1 s per GB
    on a small VM) before the first byte could be received. A ``bytearray`` where
    anonymous mappings are not available."""
    private = getattr(mmap, "MAP_PRIVATE", None)
    anonymous = getattr(mmap, "MAP_ANONYMOUS", None)
    if private is None or anonymous is None or nbytes == 0:
        return bytearray(nbytes)
    return mmap.mmap(-1, nbytes, flags=private | anonymous)


class MemorySink(_RegionSink):
    """The whole file in one fresh buffer (``fresh_buffer``); bodies are read straight
    into place while the prefaulter populates its pages ahead of them."""

    def __init__(self, nbytes: int) -> None:
        self.buffer = fresh_buffer(nbytes)
        self._view = memoryview(self.buffer)
        self._prefaulter = Prefaulter(address_of(self.buffer), nbytes)


class FileSink(_RegionSink):
    """A temporary file beside ``path``, renamed onto it by ``commit`` (never half-written
    under the final name). The file is mapped into memory and bodies are read straight
    into the mapping: one copy, socket to page cache; several streams may fill disjoint
    regions at once. Its blocks are reserved first, so a full disk is an ``OSError`` here
    rather than a fault while writing through the mapping."""

    def __init__(self, path: str | os.PathLike[str], nbytes: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.",
                                        suffix=".part")
        self._fd = handle
        self._temporary = Path(name)
        self._map: mmap.mmap | None = None
        self._prefaulter: Prefaulter | None = None
        try:
            os.ftruncate(self._fd, nbytes)
            _reserve(self._fd, nbytes)
            self._map = mmap.mmap(self._fd, nbytes, flags=mmap.MAP_SHARED,
                                  prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            self.abort()
            raise
        self._view = memoryview(self._map)
        self._prefaulter = Prefaulter(address_of(self._map), nbytes)

    def _unmap(self) -> None:
        self.close()
        if self._map is not None:
            self._view.release()
            self._map.close()
            self._map = None

    def commit(self) -> Path:
        self._unmap()
        os.close(self._fd)
        self._fd = -1
        os.replace(self._temporary, self.path)
        return self.path

    def abort(self) -> None:
        # A view still referenced (from a traceback) keeps the mapping: the GC unmaps it.
        with contextlib.suppress(BufferError):
            self._unmap()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._temporary.unlink(missing_ok=True)


def _reserve(fd: int, nbytes: int) -> None:
    """Allocate the file's blocks up front where the filesystem can (ENOSPC raises)."""
    if nbytes and hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, nbytes)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise


Sink = MemorySink | FileSink


class HashFollower:
    """sha256 of a sink's bytes computed on a second thread, following the bytes as they
    arrive (in order), so hashing overlaps the download instead of adding to it."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._digest = hashlib.sha256()
        self._hashed = 0
        self._ready = 0
        self._end = -1
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="weightinit-sha256",
                                        daemon=True)
        self._thread.start()

    def advance(self, ready: int) -> None:
        """Bytes ``[0, ready)`` of the sink are final."""
        with self._condition:
            self._ready = ready
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._ready <= self._hashed and self._end < 0:
                    self._condition.wait()
                ready, end = self._ready, self._end
            if ready > self._hashed:
                with self._sink.region(self._hashed, ready - self._hashed) as view:
                    self._digest.update(view)
                self._hashed = ready
            elif end >= 0:
                return

    def finish(self) -> str:
        """Hash what is left and return the hex digest."""
        self.cancel()
        return self._digest.hexdigest()

    def cancel(self) -> None:
        """Stop the thread once it has hashed what is ready (after a failure, too)."""
        with self._condition:
            self._end = self._ready
            self._condition.notify()
        self._thread.join()


def copy_into(source: Source, sink: Sink, offset: int, nbytes: int, *,
              progress: Progress | None = None, follower: HashFollower | None = None,
              chunk_bytes: int = CHUNK_BYTES) -> None:
    """Exactly ``nbytes`` of ``source`` read straight into the sink at ``offset``."""
    done = 0
    with sink.region(offset, nbytes) as target:
        while done < nbytes:
            with target[done : done + chunk_bytes] as view:
                count = source.readinto(view)
            if not count:
                raise ProtocolError(f"body ended {nbytes - done} bytes short")
            done += count
            if progress is not None:
                progress.update(count)
            if follower is not None:
                follower.advance(offset + done)


def _dtype_info(code: str) -> DTypeInfo:
    try:
        return BY_SAFETENSORS[code]
    except KeyError:
        raise ProtocolError(f"unsupported safetensors dtype {code!r}") from None


def _tensor_ranges(layout: Layout) -> Iterator[tuple[str, DTypeInfo, int, int, list[int]]]:
    """Per tensor, in data order: name, dtype, byte offset in the whole file, element
    count and shape."""
    start = len(layout.header)
    for name, entry in layout.in_data_order():
        info = _dtype_info(entry["dtype"])
        begin, end = entry["data_offsets"]
        yield name, info, start + begin, (end - begin) // info.itemsize, entry["shape"]


def arrays_from_buffer(buffer: mmap.mmap | bytearray, layout: Layout
                       ) -> dict[str, np.ndarray]:
    """Views (no copy) of each tensor of a whole file held in memory, in data order."""
    return {name: np.frombuffer(buffer, dtype=info.numpy, count=count,
                                offset=offset).reshape(shape)
            for name, info, offset, count, shape in _tensor_ranges(layout)}


def tensors_from_buffer(buffer: mmap.mmap | bytearray, layout: Layout) -> dict[str, Any]:
    """Torch tensors over each tensor of a whole file held in memory (no copy), in data
    order. bfloat16 is torch's own: unlike numpy arrays, no ml_dtypes import (about 0.6 s)
    is needed. Each tensor keeps ``buffer`` alive."""
    import torch

    tensors = {}
    for name, info, offset, count, shape in _tensor_ranges(layout):
        dtype = getattr(torch, info.name)
        if count == 0:  # frombuffer refuses an empty range
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            tensors[name] = torch.frombuffer(buffer, dtype=dtype, count=count,
                                             offset=offset).reshape(shape)
    return tensors
