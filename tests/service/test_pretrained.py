"""``weightinit pretrained`` / ``weightinit.hf.save_pretrained``: a directory transformers
loads, laid out as its own ``save_pretrained`` lays out the same model (same shard files,
same index), every shard's sha256 reported, the same bytes locally and from a server."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from live_server import weightinit_command  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

import weightinit.hf  # noqa: E402

LLAMA = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 96, "architectures": ["LlamaForCausalLM"]}
GPT2 = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "vocab_size": 96,
        "n_positions": 32}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tensors(directory: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted(directory.glob("*.safetensors")):
        out.update(load_file(path))
    return out


@pytest.mark.parametrize("max_shard_size", ["20KB", "5GB"])
def test_layout_equals_transformers_save_pretrained(tmp_path: Path, max_shard_size: str) -> None:
    reference = tmp_path / "reference"
    model = transformers.LlamaForCausalLM._from_config(
        transformers.AutoConfig.for_model(**LLAMA))
    model.save_pretrained(reference, max_shard_size=max_shard_size)
    ours = tmp_path / "ours"
    result = weightinit.hf.save_pretrained(LLAMA, ours, seed=5, max_shard_size=max_shard_size)

    assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in reference.iterdir())
    assert ((ours / "generation_config.json").read_bytes()
            == (reference / "generation_config.json").read_bytes())
    assert result["generation_config"] == str(ours / "generation_config.json")
    if (reference / "model.safetensors.index.json").exists():
        assert len(result["files"]) > 1
        theirs_index = json.loads((reference / "model.safetensors.index.json").read_text())
        ours_index = json.loads((ours / "model.safetensors.index.json").read_text())
        assert ours_index == theirs_index
    for file in result["files"]:
        assert file["sha256"] == _sha256(ours / file["file"])
        assert file["bytes"] == (ours / file["file"]).stat().st_size
    loaded, info = transformers.AutoModelForCausalLM.from_pretrained(
        ours, output_loading_info=True)
    assert {k: list(v) for k, v in info.items()} == {
        "missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    assert type(loaded).__name__ == "LlamaForCausalLM"


def test_no_generation_config_for_a_model_that_cannot_generate(tmp_path: Path) -> None:
    """A base model (BertModel) gets none, as from save_pretrained; one left by an earlier
    run of a generative architecture in the same directory is removed."""
    bert = {"model_type": "bert", "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 96}
    reference = tmp_path / "reference"
    transformers.BertModel._from_config(
        transformers.AutoConfig.for_model(**bert)).save_pretrained(reference)
    ours = tmp_path / "ours"
    weightinit.hf.save_pretrained(bert, ours, seed=1, architecture="BertLMHeadModel")
    assert (ours / "generation_config.json").exists()
    result = weightinit.hf.save_pretrained(bert, ours, seed=1)
    assert result["generation_config"] is None
    assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in reference.iterdir())


def test_shards_hold_the_single_file_s_bytes(tmp_path: Path) -> None:
    whole = weightinit.hf.save_pretrained(GPT2, tmp_path / "whole", seed=9, dtype="bfloat16")
    parts = weightinit.hf.save_pretrained(GPT2, tmp_path / "parts", seed=9, dtype="bfloat16",
                                          max_shard_size="8KB")
    assert len(whole["files"]) == 1 and len(parts["files"]) > 2
    a, b = _tensors(tmp_path / "whole"), _tensors(tmp_path / "parts")
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)  # type: ignore[union-attr]
    config = json.loads((tmp_path / "parts" / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["model_type"] == "gpt2"
    model = transformers.AutoModel.from_pretrained(tmp_path / "parts")
    assert model.dtype == torch.bfloat16


def test_a_new_layout_replaces_the_old_files(tmp_path: Path) -> None:
    weightinit.hf.save_pretrained(GPT2, tmp_path, seed=1, max_shard_size="8KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    weightinit.hf.save_pretrained(GPT2, tmp_path, seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*weightinit_command(), *args], capture_output=True, text=True,
                          timeout=300, check=False)


def test_cli_writes_the_directory_and_prints_each_sha256(tmp_path: Path, server) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(LLAMA))
    local, remote = tmp_path / "local", tmp_path / "remote"
    done = run("pretrained", str(config), "--seed", "11", "-o", str(local), "--dtype",
               "bfloat16", "--max-shard-size", "20KB")
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert len(lines) == 3
    for sha, name, *_ in lines:
        assert _sha256(local / name) == sha
    fetched = run("pretrained", str(config), "--seed", "11", "-o", str(remote), "--dtype",
                  "bfloat16", "--max-shard-size", "20KB", "--server", server.base_url,
                  "--json", "-q")
    assert fetched.returncode == 0, fetched.stderr
    result = json.loads(fetched.stdout)
    assert [f["sha256"] for f in result["files"]] == [line[0] for line in lines]
    for name in ("config.json", "generation_config.json"):
        assert (remote / name).read_bytes() == (local / name).read_bytes()


@pytest.mark.parametrize("remote", [False, True])
def test_cli_bad_config_exits_2_naming_the_field(tmp_path: Path, server, remote: bool) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**LLAMA, "model_type": "bloom"}))
    extra = ("--server", server.base_url) if remote else ()
    done = run("pretrained", str(config), "--seed", "1", "-o", str(tmp_path / "out"), *extra)
    assert done.returncode == 2
    assert "model_type" in done.stderr and "llama" in done.stderr
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_cli_bad_shard_size_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(GPT2))
    done = run("pretrained", str(config), "--seed", "1", "-o", str(tmp_path / "out"),
               "--max-shard-size", "lots")
    assert done.returncode == 2 and "lots" in done.stderr


def test_from_a_server_this_process_needs_neither_torch_nor_transformers(
        tmp_path: Path, server) -> None:
    """The server's tracing worker sends the generation config with the plan: a machine
    with only the base install writes the same directory (generation_config.json too)
    without importing transformers (whose import alone took ~5 s of the CLI's time)."""
    local = tmp_path / "local"
    weightinit.hf.save_pretrained(LLAMA, local, seed=3)
    remote = tmp_path / "remote"
    script = (
        "import json, sys\n"
        "sys.modules['torch'] = sys.modules['transformers'] = None  # importing fails\n"
        "import weightinit.hf\n"
        f"weightinit.hf.save_pretrained(json.loads({json.dumps(json.dumps(LLAMA))}), "
        f"{str(remote)!r}, seed=3, server={server.base_url!r})\n"
        "assert 'transformers' not in {m for m, v in sys.modules.items() if v is not None}\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in remote.iterdir()) == sorted(p.name for p in local.iterdir())
    for path in local.iterdir():
        assert (remote / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_plan_without_the_model_description_writes_no_generation_config(
        tmp_path: Path) -> None:
    """A server of an earlier release sends no ``huggingface`` entry in its plan document:
    the directory is written without generation_config.json (from_pretrained derives it),
    and one left by an earlier run into the directory is removed."""
    from weightinit.service.pretrained import _write_generation_config

    assert _write_generation_config(None, tmp_path) is None
    assert not (tmp_path / "generation_config.json").exists()
    written = _write_generation_config({"generation_config": {"bos_token_id": 1}}, tmp_path)
    assert written is not None and json.loads(written.read_text()) == {"bos_token_id": 1}
    assert _write_generation_config(None, tmp_path) is None
    assert not written.exists()
