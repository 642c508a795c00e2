"""Every example in ``examples/`` run as a user runs it: a script talking to a real
``weightinit serve`` on 127.0.0.1, loading the weights into its framework's model."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.util import find_spec, module_from_spec, spec_from_file_location
from pathlib import Path

import pytest
from live_server import RunningServer
from safetensors.numpy import load_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_TIMEOUT_S = 300  # a liveness bound for imports on a busy machine, not a target
needs_hf_source = pytest.mark.skipif(
    find_spec("transformers") is None or find_spec("weightinit.core.hf") is None,
    reason="the huggingface spec source needs weightinit.core.hf and the [hf] extra",
)
needs_transformers = pytest.mark.skipif(
    find_spec("transformers") is None,
    reason="transformers is a test dependency: pip install -e '.[test]'",
)


def run_example(name: str, server: RunningServer, *extra: str) -> str:
    """Run ``examples/<name>.py`` against the server; its last line of output."""
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--server", server.url, *extra],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env, cwd=EXAMPLES.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_torch_mlp_loads_strictly(server: RunningServer, tmp_path: Path) -> None:
    output = tmp_path / "mlp.safetensors"
    line = run_example("torch_mlp", server, "--output", str(output))
    assert line.startswith("torch_mlp: loaded 6 tensors, logits (2, 10)")
    assert set(load_file(str(output))) == {"fc1.weight", "fc1.bias", "fc2.weight",
                                           "fc2.bias", "out.weight", "out.bias"}


def test_torch_cnn_spec_from_a_meta_module(server: RunningServer) -> None:
    line = run_example("torch_cnn", server)
    assert line.startswith("torch_cnn: loaded 14 tensors on cpu, logits (2, 10)")


# Each Keras example runs twice: with its spec file, and sending the model's to_json()
# (keras_model), whose weight paths lack the Python-built model's prefixes.
KERAS_SOURCES = pytest.mark.parametrize("source", [(), ("--from-model",)],
                                        ids=["spec-file", "keras-model"])


@KERAS_SOURCES
def test_keras_cnn_assigns_every_weight(server: RunningServer, source: tuple[str, ...]) -> None:
    line = run_example("keras_cnn", server, *source)
    assert line.startswith("keras_cnn: assigned 14 weights, logits (2, 10)")


@KERAS_SOURCES
def test_keras_lstm_keeps_the_forget_gate_bias(server: RunningServer,
                                               source: tuple[str, ...]) -> None:
    line = run_example("keras_lstm", server, *source)
    assert line.startswith("keras_lstm: assigned 12 weights, scores (2, 1)")
    assert line.endswith("forget-gate bias all one: True")


@needs_transformers
def test_gpt2_loads_into_transformers_gpt2lmheadmodel(server: RunningServer) -> None:
    line = run_example("gpt2", server)
    assert line.startswith("gpt2: loaded 29 tensors, logits (1, 8, 1000)")


@needs_transformers
def test_llama_loads_into_transformers_llamaforcausallm(server: RunningServer) -> None:
    line = run_example("llama", server)
    assert line.startswith("llama: loaded 21 tensors (torch.bfloat16), logits (1, 8, 1000)")
    assert line.endswith("RMS norms one: True")



@needs_hf_source
def test_gpt2_trains_from_weightinit_as_from_config(server: RunningServer) -> None:
    """The training comparison, bounded: 3 seeds x 2 starts x 40 steps (the full run's
    numbers are in examples/README.md). The runs are deterministic (fixed seeds, fixed
    batches, no dropout), so this is a regression check of the criterion the README
    reports: the two starts' mean losses within the seed-to-seed spread."""
    line = run_example("gpt2_training", server, "--steps", "40", "--every", "20")
    assert line.startswith("gpt2_training: 3 seeds x ['from_config', 'weightinit']")
    assert line.endswith("within the seed-to-seed spread at every checkpoint: True")


@needs_hf_source
def test_fsdp_llama_trains_from_its_shards_under_torchrun(server: RunningServer,
                                                          tmp_path: Path) -> None:
    """The torchrun recipe on 2 gloo ranks (CPU): FSDP2 over a meta-built LlamaForCausalLM
    (a vocabulary of 1001: uneven shards), weights from the huggingface source, one AdamW
    step, a DCP checkpoint. --verify all-gathers every tensor: sha256 equal to the server's
    report of the single-process file, and the ranks' bytes add up to the file's."""
    checkpoint = tmp_path / "checkpoint"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
           "TORCH_CPP_LOG_LEVEL": "ERROR"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--standalone", str(EXAMPLES / "fsdp_llama.py"), "--server", server.url,
         "--checkpoint", str(checkpoint), "--verify"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("fsdp_llama: 2 ranks, rank 0 filled 21 tensors")
    assert line.endswith("all-gathered tensors equal the file: True")

    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    from transformers import LlamaForCausalLM

    location = spec_from_file_location("fsdp_llama", EXAMPLES / "fsdp_llama.py")
    example = module_from_spec(location)
    location.loader.exec_module(example)
    dcp_to_torch_save(checkpoint, tmp_path / "model.pt")
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    reference = LlamaForCausalLM(example.CONFIG)
    # The checkpoint is the whole trained model: it loads strictly into one process.
    reference.load_state_dict(saved, strict=True)

