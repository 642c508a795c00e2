"""Every fenced code block of README.md and docs/*.md is run as written, checked by a
function of ``VALIDATED`` (a block that is not a program: a source tree), or listed in
``EXCLUDED`` with the reason it cannot run here.

Each document is followed in order in a folder of its own, as a reader would
(``doc_session.py``, one process for all of them): ``python`` blocks are executed in one
namespace per document, ``bash`` blocks run in the folder (the ``weightinit`` and
``curl`` commands against the session's live server), ``json`` blocks are validated as
specs and planned. The documented server address (``HOST:8000``) is replaced by the live
server's. The install commands that cannot run here are still checked: the extras they
name exist, and the README's install table names every extra pyproject.toml defines.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="tomli is needed on Python 3.10")

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNERS = ("python", "bash", "sh", "shell", "console", "json")
SESSION_TIMEOUT_S = 900.0  # a liveness bound for a busy 2-core machine


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository
    line: int  # of the opening fence
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Marker:
    """Names one block: its document and a piece of text only that block holds."""

    path: str
    contains: str

    def matches(self, block: Block) -> bool:
        return block.path == self.path and self.contains in block.code


FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


def blocks_of(document: Path) -> list[Block]:
    lines = document.read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        indent = len(opening.group(1))
        code = "\n".join(line[indent:] for line in lines[index + 1:end]) + "\n"
        found.append(Block(str(document.relative_to(ROOT)), index + 1, opening.group(2), code))
        index = end + 1
    return found


ALL_BLOCKS = [block for document in DOCUMENTS for block in blocks_of(document)]

# The blocks that cannot run here, each with its reason. Their install commands are
# still checked below (the extras they name exist).
EXCLUDED: dict[Marker, str] = {
    Marker("README.md", 'pip install -e ".[fast]"'):
        "installs from the package index; `weightinit serve` is what the live-server "
        "fixture runs and `pytest -q` is this suite",
    Marker("README.md", "docker build"):
        "needs a Docker engine and a Kubernetes cluster (tests/deploy and "
        ".ci/deploy-check.sh rehearse the image and manifests without them)",
    Marker("docs/deploy.md", "docker build -t weightinit .\n"):
        "needs a Docker engine (tests/deploy rehearses the image with buildah in CI)",
    Marker("docs/deploy.md", "EXTRAS=hf"):
        "needs the CPU torch wheel file and a Docker engine",
    Marker("docs/deploy.md", "deploy/lock.sh"):
        "resolves against the package index (network)",
    Marker("docs/deploy.md", "kubectl"):
        "needs a Kubernetes cluster (tests/deploy/test_manifests.py validates the "
        "manifests)",
    Marker("docs/deploy.md", "docker compose up"):
        "needs a Docker engine (tests/deploy checks the compose file)",
    Marker("docs/distributed.md", "torchrun --nproc_per_node 8"):
        "a multi-process torchrun recipe with the reader's model and replica URLs; "
        "tests/service/adapters/test_torch_distributed.py runs it under torchrun (gloo) "
        "on a Llama-style model",
    Marker("docs/distributed.md", "examples/fsdp_llama.py --server"):
        "starts its own server on port 8000 and two torchrun ranks; "
        "tests/examples/test_examples.py runs the example under torchrun (gloo) against "
        "the live server, with --verify",
    Marker("docs/huggingface.md", "pip install 'weightinit[hf]'"):
        "installs from the package index",
    Marker("docs/huggingface.md", "gpt2_training.py --server"):
        "a training run of minutes on its own server on port 8000; "
        "tests/examples/test_examples.py runs the script bounded (40 steps) against the "
        "live server",
}



def check_source_tree(block: Block) -> None:
    """Every file and folder a source-tree block names exists where it places it: two
    spaces of indentation per level, names before the description (``a.py, b.py``)."""
    folders: list[str] = []
    named = 0
    for line in block.code.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent >= 20:  # a description's continuation
            continue
        depth = indent // 2
        folders = folders[:depth]
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        for name in (part.strip() for part in names.split(",")):
            path = ROOT.joinpath(*folders, name)
            assert path.exists(), f"{block.where}: {path.relative_to(ROOT)} does not exist"
            named += 1
        if names.endswith("/"):
            folders.append(names.rstrip("/"))
    assert named >= 10, f"{block.where}: the tree parser found {named} names"


# Blocks that are no program, each with the function that checks them.
VALIDATED = {
    Marker("docs/architecture.md", "core/                       the engine"): check_source_tree,
}

# What a block must have done, checked in its document's namespace right after it.
CHECKS: dict[Marker, str] = {
    Marker("README.md", "weightinit.Client"): (
        "assert not result.missing_keys and not result.unexpected_keys, result\n"
        "assert sorted(arrays) == ['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight']\n"
    ),
    Marker("docs/client.md", "init_with_report"): (
        "import hashlib, os\n"
        "assert info['bytes'] == os.path.getsize('model.safetensors')\n"
        "assert info['file_sha256'] == report['file_sha256']\n"
        "assert hashlib.sha256(open('model.safetensors', 'rb').read()).hexdigest()"
        " == report['file_sha256']\n"
        "assert sorted(arrays) == sorted(t['name'] for t in plan['tensors'])\n"
    ),
    Marker("docs/client.md", "parallel=4"): (
        "import hashlib\n"  # the assembled file is the single-stream file, byte for byte
        "assert hashlib.sha256(open('model.safetensors', 'rb').read()).hexdigest()"
        " == report['file_sha256']\n"
    ),
    Marker("docs/client.md", "empty_weights"): (
        "assert not result.missing_keys and not result.unexpected_keys, result\n"
        "assert not any(p.is_meta for p in model.parameters())\n"
    ),
    Marker("docs/client.md", "weightinit.keras"): (
        "assert not result.missing_keys and not result.unexpected_keys, result\n"
    ),
    Marker("docs/huggingface.md", "weightinit.hf.from_config"): (
        "assert type(model).__name__ == 'LlamaForCausalLM'\n"
        "assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])\n"
        "assert str(next(model.parameters()).dtype) == 'torch.bfloat16'\n"
    ),
    Marker("docs/huggingface.md", "weightinit.hf.save_pretrained"): (
        "import os\n"
        "assert result['files'] and all(os.path.exists(os.path.join('out', f['file']))"
        " for f in result['files']), result\n"
    ),
}

# Files a document assumes the reader already holds, written into its folder first.
TINY_LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
              "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000}
FILES: dict[str, dict[str, str]] = {
    # "A training team holds a config.json": a small Llama's
    "docs/huggingface.md": {"config.json": json.dumps(TINY_LLAMA, indent=2)},
}


def is_excluded(block: Block) -> bool:
    return any(marker.matches(block) for marker in [*EXCLUDED, *VALIDATED])


RUN_BLOCKS = [block for block in ALL_BLOCKS if not is_excluded(block)]


def check_of(block: Block) -> str:
    return "".join(code for marker, code in CHECKS.items() if marker.matches(block))


SERVER_ADDRESS = re.compile(
    r"(?P<scheme>https?://)?(?:localhost|\d+\.\d+\.\d+\.\d+|[a-z][a-z0-9-]*):8000\b")


def with_server(code: str, port: int) -> str:
    """The documented server (any ``HOST:8000``) replaced by the live one."""
    return SERVER_ADDRESS.sub(lambda m: f"{m.group('scheme') or ''}127.0.0.1:{port}", code)


@pytest.fixture(scope="module")
def results(server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Runs every document's blocks once, against the session's live server."""
    base = tmp_path_factory.mktemp("docs")
    documents = []
    for document in DOCUMENTS:
        path = str(document.relative_to(ROOT))
        blocks = [block for block in RUN_BLOCKS if block.path == path]
        if not blocks:
            continue
        folder = base / path.replace("/", "_")
        folder.mkdir()
        documents.append({
            "path": path, "folder": str(folder), "files": FILES.get(path, {}),
            "blocks": [{"where": b.where, "language": b.language,
                        "code": with_server(b.code, server.port),
                        "check": check_of(b)} for b in blocks],
        })
    plan, output = base / "plan.json", base / "results.json"
    plan.write_text(json.dumps({"documents": documents}))
    env = {**os.environ, "KERAS_BACKEND": "torch",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("doc_session.py")),
                           str(plan), str(output)], env=env, text=True, capture_output=True,
                          timeout=SESSION_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(output.read_text())


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=lambda block: block.where)
def test_block_runs(block: Block, results: dict[str, Any]):
    outcome = results[block.where]
    assert outcome["ok"], f"{block.where} ({block.language}):\n{outcome['error']}"


def test_every_block_runs_or_is_excluded_with_a_reason():
    """A block in a language without a runner (or none: untagged) must be tagged with one
    or excluded, so no block of the docs goes unchecked by accident."""
    unrunnable = [b.where for b in RUN_BLOCKS if b.language not in RUNNERS]
    assert not unrunnable, f"tag these blocks ({', '.join(RUNNERS)}) or exclude them"
    serving = [b.where for b in RUN_BLOCKS if "weightinit serve" in b.code]
    assert not serving, "blocks run against the session's server: exclude these"
    assert all(reason.strip() for reason in EXCLUDED.values())


@pytest.mark.parametrize(
    "block", [b for b in ALL_BLOCKS if any(m.matches(b) for m in VALIDATED)],
    ids=lambda block: block.where)
def test_validated_block(block: Block):
    for marker, check in VALIDATED.items():
        if marker.matches(block):
            check(block)


@pytest.mark.parametrize("marker", [*EXCLUDED, *VALIDATED, *CHECKS],
                         ids=lambda marker: f"{marker.path}:{marker.contains[:30]}")
def test_each_listed_block_still_exists_and_is_unique(marker: Marker):
    """No stale entry: each exclusion or check names exactly one block of the docs."""
    matching = [block.where for block in ALL_BLOCKS if marker.matches(block)]
    assert len(matching) == 1, f"{marker} matches {matching or 'no block'}"


def test_checked_blocks_are_run():
    assert not [marker for marker in CHECKS if any(marker.matches(b) for b in ALL_BLOCKS
                                                   if is_excluded(b))]


def test_the_docs_have_blocks_of_each_runner():
    """The parser finds the blocks (a broken fence pattern would make this file vacuous)."""
    assert {"python", "bash", "json"} <= {block.language for block in RUN_BLOCKS}
    assert len(ALL_BLOCKS) >= 15


def pyproject_extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["optional-dependencies"])


def named_extras(text: str) -> set[str]:
    """The extras in ``.[a,b]`` / ``weightinit[a]`` / a bare ``[a]``."""
    return {name.strip() for group in re.findall(r"\[([a-z][a-z0-9_,-]*)\]", text)
            for name in group.split(",")}


def test_install_commands_name_extras_that_exist():
    extras = pyproject_extras()
    for document in DOCUMENTS:
        for command in re.findall(r"pip install[^\n`]*", document.read_text()):
            unknown = named_extras(command) - extras
            assert not unknown, f"{document.name}: {command!r} names {unknown}"


def install_table() -> list[tuple[str, str]]:
    """(you want, install) rows of the README's "What to install" table."""
    section = (ROOT / "README.md").read_text().split("## What to install", 1)[1]
    rows = []
    for line in section.split("\n## ", 1)[0].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 and not set(cells[0]) <= {"-"}:
            rows.append((cells[0], cells[1]))
    return rows[1:]  # the header row


def test_readme_install_table_names_every_extra_of_pyproject():
    rows = install_table()
    assert len(rows) >= 5
    named = set().union(*(named_extras(install) for _, install in rows))
    assert named == pyproject_extras()


def test_a_console_transcript_runs_its_commands_not_its_output():
    from doc_session import console_commands

    transcript = "$ weightinit plan spec.json \\\n    --json\n{\"seed\": 1}\n$ echo done\ndone\n"
    assert console_commands(transcript) == "weightinit plan spec.json \\\n    --json\necho done\n"
