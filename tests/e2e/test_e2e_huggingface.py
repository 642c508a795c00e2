"""The huggingface source through the real server: /v1/plan, /v1/init and /v1/report on a
config, the same bytes as the engine's; hostile configs refused early with little memory;
an unsupported family and remote code refused by name; and a server installed without
the [hf] extra answering with a 422 that names it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_helpers import RunningServer, start_server
from fault_helpers import MIB, proc_status, reset_peak_rss

pytest.importorskip("transformers")
from weightinit.core import Spec, build_plan, write_file

GPT2 = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "vocab_size": 96,
        "n_positions": 32, "architectures": ["GPT2LMHeadModel"]}
SPEC = {"seed": 77, "dtype": "bfloat16", "huggingface": {"config": GPT2}}


def test_init_plan_and_report_serve_a_config(server: RunningServer, tmp_path: Path) -> None:
    plan = httpx.post(server.base_url + "/v1/plan", json=SPEC, timeout=300)
    assert plan.status_code == 200, plan.text[:500]
    names = [t["name"] for t in plan.json()["tensors"]]
    assert "transformer.wte.weight" in names and "lm_head.weight" not in names
    proj = next(t for t in plan.json()["tensors"] if t["name"].endswith("attn.c_proj.weight"))
    assert proj["initializer"] == {"name": "normal", "mean": 0.0, "std": 0.01}
    model = plan.json()["huggingface"]
    assert model["model_type"] == "gpt2" and model["architecture"] == "GPT2LMHeadModel"
    assert model["generation_config"]["bos_token_id"] == 50256  # what save_pretrained writes

    body = httpx.post(server.base_url + "/v1/init", json=SPEC, timeout=300)
    assert body.status_code == 200
    local = tmp_path / "local.safetensors"
    write_file(build_plan(Spec.model_validate(SPEC)), local)
    data_start = 8 + int.from_bytes(body.content[:8], "little")
    local_bytes = local.read_bytes()
    assert body.content[data_start:] == local_bytes[data_start:]
    header = json.loads(body.content[8:data_start])
    assert header["__metadata__"]["format"] == "pt"

    report = httpx.post(server.base_url + "/v1/report", json=SPEC, timeout=300)
    assert report.status_code == 200
    assert report.json()["file_sha256"] == hashlib.sha256(body.content).hexdigest()
    # traced in the worker process: the server itself never loads torch
    maps = Path(f"/proc/{server.process.pid}/maps").read_text()
    assert "libtorch" not in maps


def test_a_parallel_client_fetches_a_config_in_one_stream_without_tracing_locally(
        server: RunningServer) -> None:
    """Planning a huggingface spec locally (to split it into groups) would start a tracing
    worker in the client's process: the parallel client fetches it in one stream, with no
    warning, the same bytes."""
    script = f"""
import json, sys, warnings
warnings.simplefilter("error")
from weightinit.service.client.client import Client
from weightinit.core.hf import trace_process
spec = json.loads({json.dumps(json.dumps(SPEC))})
with Client({server.base_url!r}, parallel=2) as client:
    arrays = client.init(spec, verify_sha256=True)
assert trace_process.WORKER.pid is None, "a local tracing worker was started"
print(json.dumps({{name: list(a.shape) for name, a in arrays.items()}}))
"""  # verify_sha256: the bytes are checked against the server's report of the whole file
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    plan = httpx.post(server.base_url + "/v1/plan", json=SPEC, timeout=300).json()
    assert json.loads(done.stdout) == {t["name"]: t["shape"] for t in plan["tensors"]}


HOSTILE = {
    "10^9 layers": {**GPT2, "n_layer": 10**9},
    "vocabulary 10^12": {**GPT2, "vocab_size": 10**12},
    "hidden 10^9": {**GPT2, "n_embd": 10**9, "n_head": 1},
    "an integer of 10^30": {**GPT2, "n_positions": 10**30},
}


@pytest.mark.parametrize("path", ["/v1/plan", "/v1/init"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_configs_are_refused_early_with_little_memory(
    server: RunningServer, path: str, case: str,
) -> None:
    warm = httpx.post(server.base_url + "/v1/plan", json=SPEC, timeout=300)  # imports done
    assert warm.status_code == 200
    pid = server.process.pid
    baseline = proc_status(pid)["VmRSS"]
    reset_peak_rss(pid)
    body = {"seed": 1, "huggingface": {"config": HOSTILE[case]}}
    response = httpx.post(server.base_url + path, json=body, timeout=60)
    peak = proc_status(pid)["VmHWM"]
    assert response.status_code == 413, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert error["details"][0]["loc"][:2] == ["huggingface", "config"]
    assert peak - baseline < 16 * MIB


@pytest.mark.parametrize(("config", "loc", "words"), [
    ({"model_type": "bloom"}, ["huggingface", "config", "model_type"], ["llama", "layers"]),
    ({**GPT2, "auto_map": {"AutoModel": "x.Y"}}, ["huggingface", "config", "auto_map"],
     ["remote code"]),
])
def test_refusals_name_the_field(server: RunningServer, config: dict, loc: list,
                                 words: list[str]) -> None:
    response = httpx.post(server.base_url + "/v1/init", json={"seed": 1, "huggingface":
                                                              {"config": config}}, timeout=60)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"][0]["loc"] == loc
    assert all(word in error["message"] for word in words)


@pytest.fixture(scope="module")
def slim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose Python cannot import transformers (a package on PYTHONPATH that
    raises ImportError shadows it), as one installed without the [hf] extra."""
    blocker = tmp_path_factory.mktemp("no_hf") / "transformers"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('transformers is not installed')\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(blocker.parent))
        running = start_server()
    try:
        yield running
    finally:
        running.stop()


def test_a_server_without_the_extra_names_it(slim_server: RunningServer) -> None:
    for path in ("/v1/plan", "/v1/init", "/v1/report"):
        response = httpx.post(slim_server.base_url + path, json=SPEC, timeout=60)
        assert response.status_code == 422, response.text[:300]
        error = response.json()["error"]
        assert error["code"] == "extra_not_installed"
        assert "weightinit[hf]" in error["message"]
    layers = {"seed": 1, "layers": [{"type": "linear", "name": "fc", "in_features": 4,
                                     "out_features": 2}]}
    assert httpx.post(slim_server.base_url + "/v1/init", json=layers, timeout=60).is_success
