"""core.hf.trace_process: tracing runs in a worker process (torch and transformers never
enter the planning process), bounded in time, closed when idle; the traced model crosses
as JSON unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from hf_variants import VARIANTS
from weightinit.core import Limits, Spec, build_plan
from weightinit.core.hf.errors import TraceTimeout
from weightinit.core.hf.source import HuggingFaceSource
from weightinit.core.hf.trace_process import WORKER, TraceWorker, _read_line, source_key
from weightinit.core.hf.traced import model_from_json, model_to_json


def test_planning_a_config_imports_neither_torch_nor_transformers() -> None:
    """In a fresh interpreter: the plan is made, and the process has not imported them."""
    code = (
        "import json, sys\n"
        "from weightinit.core import Spec, build_plan\n"
        f"spec = {{'seed': 1, 'huggingface': {{'config': {VARIANTS['whisper']!r}}}}}\n"
        "plan = build_plan(Spec.model_validate(spec))\n"
        "print(json.dumps([len(plan.outputs), 'torch' in sys.modules,"
        " 'transformers' in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    tensors, torch_imported, transformers_imported = json.loads(done.stdout.splitlines()[-1])
    assert tensors > 0 and not torch_imported and not transformers_imported


@pytest.mark.parametrize("variant", ["whisper", "bert-base", "gpt2-tied"])
def test_the_traced_model_crosses_as_json_unchanged(variant: str) -> None:
    """Sinusoidal tables, padding-row overrides and every initializer's parameters survive
    the trip (the worker's reply, read back here)."""
    from weightinit.core.hf.tracing import trace_source

    traced = trace_source(VARIANTS[variant], None, "family", 1 << 20, 1 << 40)
    again = model_from_json(json.loads(json.dumps(model_to_json(traced))))
    assert again == traced
    assert [t.rule.init.model_fields_set for t in again.tensors] == [
        t.rule.init.model_fields_set for t in traced.tensors]


def test_a_trace_past_the_time_limit_is_a_503_and_the_next_one_works() -> None:
    config = {**VARIANTS["llama-gqa-untied"], "vocab_size": 97}  # not cached by other tests
    spec = Spec.model_validate({"seed": 1, "huggingface": {"config": config}})
    with pytest.raises(TraceTimeout) as error:
        build_plan(spec, Limits(hf_trace_seconds=0.001))
    assert error.value.status == 503 and error.value.code == "trace_timeout"
    assert "0.001 s" in error.value.msg
    assert WORKER.pid is None  # killed, not left running
    assert build_plan(spec).outputs  # a fresh worker traces it


def test_an_idle_worker_is_closed() -> None:
    worker = TraceWorker(idle_seconds=0.2)
    source = HuggingFaceSource(config=VARIANTS["gpt2-tied"])
    reply = worker.request({"config": source.config, "architecture": None,
                            "init_recipe": "family", "max_tensors": 1000,
                            "max_parameters": 10**9}, timeout=600)
    assert reply["model"]["tensors"]
    pid = worker.pid
    assert pid is not None
    deadline = time.monotonic() + 30
    while worker.pid is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.pid is None
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")  # exited and reaped


def test_a_worker_that_dies_is_an_end_of_file() -> None:
    read, write = os.pipe()
    os.write(write, b'{"partial": ')
    os.close(write)
    with os.fdopen(read, "rb") as stream, pytest.raises(EOFError):
        _read_line(stream, time.monotonic() + 10)


def test_the_cache_key_ignores_key_order_only() -> None:
    config = VARIANTS["gpt2-tied"]
    same = HuggingFaceSource(config=dict(reversed(list(config.items()))))
    assert source_key(HuggingFaceSource(config=config)) == source_key(same)
    assert source_key(HuggingFaceSource(config=config, init_recipe="torch")) != source_key(same)
