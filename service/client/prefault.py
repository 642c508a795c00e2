"""Faulting in a download's destination pages on a second thread, ahead of the reads.

The first write to fresh memory (a new anonymous mapping, a new file's page cache) makes the
kernel allocate and zero each page; on a small VM that costs more than the copy from the
socket itself. ``madvise(MADV_POPULATE_WRITE)`` (Linux 5.14+) does the allocation without
touching the contents, so a helper thread can run it ahead of the reading thread, on
another core, and the reader only copies. Where the call is unavailable (another OS, an
older kernel) the helper stops at once and the reader faults pages in as usual.
"""

from __future__ import annotations

import ctypes
import mmap
import threading
from typing import Any

MADV_POPULATE_WRITE = 23  # linux/mman.h
STEP_BYTES = 32 << 20
MIN_BYTES = 64 << 20  # below this the thread costs more than it saves
PAGE_BYTES = mmap.PAGESIZE

_madvise: Any = None
_looked_up = False


def _libc_madvise() -> Any:
    global _madvise, _looked_up
    if not _looked_up:
        _looked_up = True
        try:
            function = ctypes.CDLL(None, use_errno=True).madvise
        except (OSError, AttributeError):
            return None
        function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        function.restype = ctypes.c_int
        _madvise = function
    return _madvise


def address_of(buffer: Any) -> int:
    """The address of a writable buffer's first byte (the export is released at once)."""
    view = (ctypes.c_char * len(buffer)).from_buffer(buffer)
    try:
        return ctypes.addressof(view)
    finally:
        del view


class Prefaulter:
    """Populates ``[address, address + nbytes)`` writable, front to back, on a thread
    (ctypes releases the GIL during the call); ``stop`` ends it within one step."""

    def __init__(self, address: int, nbytes: int) -> None:
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        madvise = _libc_madvise()
        if madvise is None or nbytes < MIN_BYTES:
            return
        start = -(-address // PAGE_BYTES) * PAGE_BYTES
        self._range = (start, address + nbytes)
        self._thread = threading.Thread(target=self._run, args=(madvise,),
                                        name="weightinit-prefault", daemon=True)
        self._thread.start()

    def _run(self, madvise: Any) -> None:
        position, end = self._range
        while position < end and not self._stopped.is_set():
            count = min(STEP_BYTES, end - position)
            if madvise(position, count, MADV_POPULATE_WRITE) != 0:
                return  # unsupported here (EINVAL), or the memory is gone: stop quietly
            position += count

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
