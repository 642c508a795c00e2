"""Traces of ``huggingface`` sources, made in a separate worker process and cached here.

Tracing imports torch and transformers (about 500 MiB resident, which the planning and
generating process never gives back). It runs in ``core.hf.worker``, a child process
started on the first trace and reused while traces keep coming: it is closed after
``IDLE_SECONDS`` without one, so its memory goes back to the system. What comes back is
the traced model as JSON (``core.hf.traced``); this process plans and generates from it
with numpy only.

Each trace is bounded in time: past the limit (``Limits.hf_trace_seconds``) the worker is
killed and the request gets a ``TraceTimeout`` (503). Results are cached (``CACHE_ENTRIES``)
by the sha256 of the canonical JSON of (config, architecture, recipe); one trace runs at
a time.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from typing import IO, Any

from weightinit.core.errors import LimitError, SpecError
from weightinit.core.hf.errors import HF_EXTRA_MESSAGE, ExtraMissing, TraceFailed, TraceTimeout
from weightinit.core.hf.source import HuggingFaceSource
from weightinit.core.hf.traced import TracedModel, model_from_json

CACHE_ENTRIES = 32
IDLE_SECONDS = 60.0
_ERRORS: dict[str, type[SpecError]] = {
    "SpecError": SpecError, "LimitError": LimitError, "ExtraMissing": ExtraMissing}


def source_key(source: HuggingFaceSource) -> str:
    """sha256 of the canonical JSON of what decides the trace."""
    document = {"config": source.config, "architecture": source.architecture,
                "init_recipe": source.init_recipe}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def transformers_installed() -> bool:
    """Whether torch and transformers can be imported, without importing them."""
    for name in ("torch", "transformers"):
        if name in sys.modules:
            if sys.modules[name] is None:  # import of it blocked
                return False
        elif importlib.util.find_spec(name) is None:
            return False
    return True


class TraceWorker:
    """The tracing child process: started on demand, one request at a time, closed when
    idle, killed on a timeout."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._timer: threading.Timer | None = None
        self._used = 0.0

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait at most ``timeout`` seconds (start included)."""
        if self._pid != os.getpid():  # a forked server process: the pipes are not ours
            self._reset()
        deadline = time.monotonic() + timeout
        with self._lock:
            process = self._start()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write((json.dumps(payload) + "\n").encode())
                process.stdin.flush()
                line = _read_line(process.stdout, deadline)
            except TimeoutError:
                self._stop(kill=True)
                raise TraceTimeout(("huggingface", "config"), (
                    f"building this config's model to trace it took longer than {timeout:g} s "
                    "(the limit of this deployment, WEIGHTINIT_HF_TRACE_TIMEOUT_S)")) from None
            except (BrokenPipeError, EOFError):
                code = self._stop(kill=True)
                raise TraceFailed(("huggingface", "config"), (
                    f"the tracing worker exited (status {code}) before answering; it may have "
                    "run out of memory")) from None
            self._used = time.monotonic()
            self._schedule_close()
            return json.loads(line)

    def close(self) -> None:
        """Close the worker now (it exits at the end of its input)."""
        with self._lock:
            self._stop(kill=False)

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "OMP_NUM_THREADS": "1"}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "weightinit.core.hf.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True)
        return self._process

    def _stop(self, kill: bool) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if kill:
            process.kill()
        else:
            assert process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        if process.stdout is not None:
            process.stdout.close()
        return code

    def _schedule_close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.idle_seconds, self._close_if_idle)
        self._timer.daemon = True
        self._timer.start()

    def _close_if_idle(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # a trace is running: the next one schedules the close again
        try:
            if time.monotonic() - self._used >= self.idle_seconds * 0.99:
                self._stop(kill=False)
        finally:
            self._lock.release()


def _read_line(stream: IO[bytes], deadline: float) -> bytes:
    """One line from the worker's stdout, waiting until ``deadline`` at most."""
    fd = stream.fileno()
    parts: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        data = os.read(fd, 1 << 20)
        if not data:
            raise EOFError
        parts.append(data)
        if data.endswith(b"\n"):
            return b"".join(parts)


WORKER = TraceWorker()
atexit.register(WORKER.close)
_CACHE_LOCK = threading.Lock()
_TRACE_LOCK = threading.Lock()
_CACHE: OrderedDict[str, TracedModel] = OrderedDict()


def _cached(key: str) -> TracedModel | None:
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is not None:
            _CACHE.move_to_end(key)
        return model


def trace(source: HuggingFaceSource, max_tensors: int, max_parameters: int,
          timeout: float) -> TracedModel:
    """The traced model of a source (cached); raises ``SpecError``/``LimitError`` for a
    config transformers or the limits refuse, ``ExtraMissing`` without the extra,
    ``TraceTimeout``/``TraceFailed`` when the worker does not answer."""
    key = source_key(source)
    model = _cached(key)
    if model is not None:
        return model
    if not transformers_installed():
        raise ExtraMissing(("huggingface",), HF_EXTRA_MESSAGE)
    with _TRACE_LOCK:  # the same config asked twice at once is traced once
        model = _cached(key)
        if model is not None:
            return model
        reply = WORKER.request({"config": source.config, "architecture": source.architecture,
                                "init_recipe": source.init_recipe, "max_tensors": max_tensors,
                                "max_parameters": max_parameters}, timeout)
        if "error" in reply:
            error = reply["error"]
            if error["kind"] not in _ERRORS:
                raise RuntimeError(f"tracing failed: {error['msg']}")
            raise _ERRORS[error["kind"]](tuple(error["loc"]), error["msg"])
        model = model_from_json(reply["model"])
        with _CACHE_LOCK:
            _CACHE[key] = model
            while len(_CACHE) > CACHE_ENTRIES:
                _CACHE.popitem(last=False)
        return model
