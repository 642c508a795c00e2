"""``weightinit.torch.load_sharded`` under torchrun: real process groups (gloo, CPU).

Each test starts ``python -m torch.distributed.run`` on ``sharded_worker.py`` (the checks
are there, per rank: bitwise equality with the single-process file, bytes received, no
full tensor of a sharded parameter made, a training step, a checkpoint loaded on another
mesh) and asserts every rank exited 0. The sources differ: two replicas over HTTP, one
server, the engine in-process. The model is a few MB (2 cores, up to 4 ranks).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from live_server import RunningServer, start_server  # noqa: E402
from weightinit.core import ChunkStream, Spec, build_plan  # noqa: E402

from weightinit.torch import spec_from_model  # noqa: E402

WORKER = Path(__file__).with_name("sharded_worker.py")
SEED = 20261205
TIMEOUT_S = 240  # a hang (a rank waiting on a collective) fails instead of blocking CI


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """The spec of the worker's model, and the single-process file's per-tensor sha256."""
    sys.path.insert(0, str(WORKER.parent))
    from sharded_worker import TinyLlama

    with torch.device("meta"):
        model = TinyLlama()
    spec = spec_from_model(model, SEED)
    plan = build_plan(Spec.model_validate(spec))
    digests: dict[str, Any] = {}
    for chunk in ChunkStream(plan):
        digests.setdefault(chunk.output.name, hashlib.sha256()).update(chunk.buffer)
    return {"spec": spec, "digests": {n: d.hexdigest() for n, d in digests.items()},
            "file_data_bytes": plan.total_bytes}


@pytest.fixture(scope="module")
def second_server() -> Iterator[RunningServer]:
    running = start_server()
    try:
        yield running
    finally:
        running.stop()


def torchrun(layout: str, ranks: int, urls: list[str], other_layout: str,
             reference: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run the worker on ``ranks`` processes; rank 0's summary line."""
    args = {**reference, "urls": urls, "other_layout": other_layout,
            "checkpoint": str(folder / "checkpoint")}
    args_path = folder / "args.json"
    args_path.write_text(json.dumps(args))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
           "TORCH_CPP_LOG_LEVEL": "ERROR"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
         "--standalone", str(WORKER), layout, str(args_path)],
        capture_output=True, text=True, timeout=TIMEOUT_S, env=env, cwd=folder,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    summary = [line for line in result.stdout.splitlines() if line.startswith('{"layout"')]
    assert len(summary) == 1, result.stdout
    return json.loads(summary[0])


def test_fsdp2_on_4_ranks_from_two_replicas(reference, server, second_server, tmp_path):
    """FSDP2 over 4 ranks: the vocabulary of 32003 splits 8001 + 8001 + 8001 + 8000."""
    summary = torchrun("fsdp", 4, [server.url, second_server.url], "2d", reference, tmp_path)
    assert summary["empty"] == [[], [], [], ["value_head.bias", "value_head.weight"]]
    # Nothing is replicated under FSDP: the ranks' bytes are the file's, once.
    assert summary["total_data_bytes"] == summary["file_data_bytes"]
    assert sorted(summary["replicas"]) == sorted([server.url, second_server.url])


def test_tensor_parallel_on_2_ranks(reference, server, tmp_path):
    """Colwise (q, k, v, gate, up, lm_head) and rowwise (o, down, embedding) shards."""
    summary = torchrun("tp", 2, [server.url], "fsdp", reference, tmp_path)
    # Under TP alone the norms are plain tensors: each rank fetches them whole, once.
    replicated = (5 * 32 + 3 * 32 + 3) * 4  # the norms, and the value head (not TP'd)
    assert summary["total_data_bytes"] == summary["file_data_bytes"] + replicated


def test_tp2_x_fsdp2_on_a_2d_mesh_in_process(reference, tmp_path):
    summary = torchrun("2d", 4, [], "fsdp", reference, tmp_path)
    # The norms and the value head are sharded by FSDP only: copied across the 2 TP ranks.
    copied = (5 * 32 + 3 * 32 + 3) * 4
    assert summary["total_data_bytes"] == summary["file_data_bytes"] + copied
