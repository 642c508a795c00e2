"""The README's Python code blocks run as written (against a live server where they talk
to one), so a newcomer's first copy-paste works."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from live_server import RunningServer, weightinit_command

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def readme_spec() -> dict:
    """The spec.json of the README's "Use it" block (its heredoc)."""
    bash = next(block for block in blocks("bash") if "cat > spec.json" in block)
    return json.loads(bash.split("<<'JSON'\n", 1)[1].split("\nJSON\n", 1)[0])


def run_python(code: str, folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    return subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, text=True,
                          capture_output=True, timeout=300, check=False)


def test_the_readme_has_the_python_blocks_tested_here():
    assert len(blocks("python")) == 2


def test_load_into_torch_block_runs_on_the_file_the_cli_makes(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps(readme_spec()))
    made = subprocess.run([*weightinit_command(), "init", "spec.json", "-o",
                           "model.safetensors"], cwd=tmp_path, check=False)
    assert made.returncode == 0
    block = next(b for b in blocks("python") if "load_file" in b)
    result = run_python(block, tmp_path)
    assert result.returncode == 0, result.stderr


def test_python_client_block_runs_against_a_server(server: RunningServer, tmp_path):
    block = next(b for b in blocks("python") if "weightinit.Client" in b)
    assert "http://127.0.0.1:8000" in block
    code = block.replace("http://127.0.0.1:8000", server.url)
    code += "\nassert not result.missing_keys and not result.unexpected_keys, result\n"
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model.safetensors").stat().st_size > 0
