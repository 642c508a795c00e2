"""Runs documents' code blocks as a reader would, in order: ``python doc_session.py
PLAN RESULTS``, for ``tests/test_docs_snippets.py``.

PLAN is a JSON file ``{"documents": [{"path", "folder", "files", "blocks": [{"where",
"language", "code", "check"}]}]}``. Each document gets its own empty folder (its
``files`` written first, what the document assumes the reader holds) and its own Python
namespace, shared by its Python blocks in order, as in a session following the page.
``python`` blocks are executed (then their ``check``, in the same namespace), ``bash``
(``sh``, ``shell``) blocks run with ``bash -eo pipefail`` in the folder, as do the ``$ ``
commands of ``console`` transcripts, ``json`` blocks are validated as
specs and planned. One process runs every document, so torch, Keras and transformers
are imported once. RESULTS gets ``{where: {"ok": bool, "error": str, "seconds":
float}}``; a block after a failure in its document is not run (it may depend on it) and
says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

BASH_TIMEOUT_S = 300.0  # a liveness bound for a busy machine, not a performance figure


def run_python(code: str, where: str, namespace: dict[str, Any]) -> None:
    exec(compile(code, where, "exec"), namespace)


def run_bash(code: str, folder: Path) -> None:
    """The block in its own process group, output to files (a process it leaves behind
    cannot hold a pipe open), and whatever it left running stopped afterwards."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(["bash", "-eo", "pipefail", "-c", code], cwd=folder,
                                   stdout=out, stderr=err, start_new_session=True)
        try:
            returncode = process.wait(timeout=BASH_TIMEOUT_S)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        if returncode != 0:
            out.seek(0)
            err.seek(0)
            raise RuntimeError(f"exit {returncode}\nstdout:\n{out.read()}\n"
                               f"stderr:\n{err.read()}")


def console_commands(transcript: str) -> str:
    """The commands of a terminal transcript: the ``$ `` lines and their ``\\``
    continuations (the rest is the output shown)."""
    commands, continued = [], False
    for line in transcript.splitlines():
        if line.startswith("$ ") or continued:
            commands.append(line[2:] if line.startswith("$ ") and not continued else line)
            continued = line.endswith("\\")
    return "\n".join(commands) + "\n"


def check_spec(code: str) -> None:
    """The block is a spec the engine accepts and can plan."""
    from weightinit.core import Spec, build_plan, plan_document

    document = plan_document(build_plan(Spec.model_validate(json.loads(code))))
    if not document["tensors"]:
        raise AssertionError("the spec plans no tensor")


def run_block(block: dict[str, Any], folder: Path, namespace: dict[str, Any]) -> None:
    language, code, where = block["language"], block["code"], block["where"]
    if language == "python":
        run_python(code, where, namespace)
        if block.get("check"):
            run_python(block["check"], f"{where} (check)", namespace)
    elif language in ("bash", "sh", "shell"):
        run_bash(code, folder)
    elif language == "console":
        run_bash(console_commands(code), folder)
    elif language == "json":
        check_spec(code)
    else:
        raise ValueError(f"no runner for {language!r} blocks")


def run_document(document: dict[str, Any], results: dict[str, dict[str, Any]]) -> None:
    folder = Path(document["folder"])
    for name, text in document["files"].items():
        (folder / name).write_text(text)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    os.chdir(folder)
    failed = None
    for block in document["blocks"]:
        if failed is not None:
            results[block["where"]] = {"ok": False,
                                       "error": f"not run: {failed} failed before it"}
            continue
        started = time.perf_counter()
        try:
            run_block(block, folder, namespace)
        except (Exception, SystemExit):  # the block's own failure is its result
            failed = block["where"]
            outcome = {"ok": False, "error": traceback.format_exc()}
        else:
            outcome = {"ok": True, "error": ""}
        results[block["where"]] = {**outcome, "seconds": time.perf_counter() - started}


def main(plan_path: str, results_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    results: dict[str, dict[str, Any]] = {}
    for document in plan["documents"]:
        run_document(document, results)
    Path(results_path).write_text(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:])
