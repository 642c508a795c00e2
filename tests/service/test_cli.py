"""The ``weightinit`` command, run as a user runs it: in a subprocess, offline.

init writes a loadable file (and with ``--report`` the observed statistics and the file's
sha256); plan prints the plan; verify exits 0 on the spec's own file and 1, naming the
tensor, on a corrupted one; a bad spec exits 2 and names the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys

import ml_dtypes  # noqa: F401  (registers bfloat16 for safetensors.numpy)
import numpy as np
import pytest
import safetensors.numpy
from live_server import weightinit_command

SPEC = {
    "seed": 4321,
    "convention": "torch",
    "dtype": "float32",
    "layers": [
        {"type": "linear", "name": "fc1", "in_features": 64, "out_features": 32,
         "weight_init": {"name": "kaiming_uniform", "nonlinearity": "relu"}},
        {"type": "conv2d", "name": "conv", "in_channels": 4, "out_channels": 8,
         "kernel_size": 3, "groups": 2, "dtype": "bfloat16"},
        {"type": "repeat", "name": "blocks", "count": 2, "layers": [
            {"type": "linear", "name": "proj", "in_features": 32, "out_features": 32,
             "weight_init": "glorot_uniform", "bias_init": "zeros"}]},
        {"type": "tensor", "name": "lm_head.weight", "shape": [100, 32],
         "init": {"name": "normal", "mean": 0.0, "std": 0.02}},
    ],
}


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*weightinit_command(), *args], input=stdin, capture_output=True, text=True,
        timeout=240, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """``weightinit init spec.json -o model.safetensors --report report.json``."""
    folder = tmp_path_factory.mktemp("cli")
    spec = folder / "spec.json"
    spec.write_text(json.dumps(SPEC))
    model, report = folder / "model.safetensors", folder / "report.json"
    result = run("init", str(spec), "-o", str(model), "--report", str(report))
    assert result.returncode == 0, result.stderr
    return spec, model, json.loads(report.read_text())


def test_init_writes_a_file_that_loads(made):
    _, model, _ = made
    tensors = safetensors.numpy.load_file(str(model))
    assert tensors["fc1.weight"].shape == (32, 64)
    assert str(tensors["conv.weight"].dtype) == "bfloat16"
    assert tensors["conv.weight"].shape == (8, 2, 3, 3)
    assert set(tensors) == {"fc1.weight", "fc1.bias", "conv.weight", "conv.bias",
                            "blocks.0.proj.weight", "blocks.0.proj.bias",
                            "blocks.1.proj.weight", "blocks.1.proj.bias", "lm_head.weight"}


def test_report_has_observed_statistics_and_the_files_sha256(made):
    _, model, report = made
    assert report["file_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    tensors = safetensors.numpy.load_file(str(model))
    for entry in report["tensors"]:
        values = tensors[entry["name"]].astype("float64")
        assert entry["sha256"] == hashlib.sha256(tensors[entry["name"]].tobytes()).hexdigest()
        assert entry["min"] == values.min() and entry["max"] == values.max()
        assert entry["mean"] == pytest.approx(values.mean(), rel=1e-9, abs=1e-12)
        assert entry["variance"] == pytest.approx(values.var(), rel=1e-9, abs=1e-15)
        assert {"expected_mean", "expected_variance", "initializer", "fan_in"} <= set(entry)


def test_plan_prints_the_plan_without_generating(made, tmp_path):
    spec, _, report = made
    result = run("plan", str(spec), "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [t["name"] for t in plan["tensors"]] == [t["name"] for t in report["tensors"]]
    assert plan["spec_sha256"] == report["spec_sha256"]
    assert "file_sha256" not in plan and "sha256" not in plan["tensors"][0]
    assert not list(tmp_path.iterdir())


def test_report_command_from_stdin_matches_init_report(made):
    _, _, report = made
    result = run("report", "-", stdin=json.dumps(SPEC))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["file_sha256"] == report["file_sha256"]


def test_verify_accepts_the_spec_file(made):
    spec, model, _ = made
    result = run("verify", str(spec), str(model))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK")


def test_verify_names_the_corrupted_tensor(made, tmp_path):
    spec, model, _ = made
    data = bytearray(model.read_bytes())
    (length,) = struct.unpack("<Q", bytes(data[:8]))
    header = json.loads(bytes(data[8 : 8 + length]))
    start, stop = header["blocks.1.proj.weight"]["data_offsets"]
    data[8 + length + (start + stop) // 2] ^= 0x80
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(bytes(data))
    result = run("verify", str(spec), str(corrupt))
    assert result.returncode == 1
    assert "blocks.1.proj.weight" in result.stdout


def test_bad_spec_exits_2_naming_the_field(tmp_path):
    bad = json.loads(json.dumps(SPEC))
    bad["layers"][3]["init"] = {"name": "normal", "mean": 0.0}  # std is required
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps(bad))
    result = run("init", str(spec), "-o", str(tmp_path / "never.safetensors"))
    assert result.returncode == 2
    assert "std" in result.stderr and "layers.3" in result.stderr
    assert not (tmp_path / "never.safetensors").exists()


@pytest.mark.parametrize(("layer", "loc"), [
    ({"type": "linear", "name": "fc", "in_features": -1, "out_features": 2},
     "layers.0.in_features"),
    ({"type": "tensor", "name": "t", "shape": [2], "init": {"name": "normal", "mean": 0}},
     "layers.0.init.std"),
])
def test_bad_spec_locations_are_paths_in_the_file(tmp_path, layer, loc):
    # As the HTTP API names them: no union tags ("linear", "normal") in the path.
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"seed": 1, "layers": [layer]}))
    result = run("plan", str(spec))
    assert result.returncode == 2
    # file:line: field: message (the whole spec is on line 1 here)
    assert result.stderr.startswith(f"{spec}:1: {loc}: "), result.stderr


def test_semantic_error_exits_2_naming_the_field(tmp_path):
    bad = {**SPEC, "select": ["fc1.weight", "nope"]}
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps(bad))
    result = run("plan", str(spec))
    assert result.returncode == 2
    assert "select.1" in result.stderr and "nope" in result.stderr


def test_server_token_comes_from_the_environment(monkeypatch):
    # A token on the command line is visible to every user in `ps`; the environment is not.
    from weightinit.service.cli import build_parser

    monkeypatch.setenv("WEIGHTINIT_TOKEN", "from-env")
    assert build_parser().parse_args(["init", "s.json", "-o", "f"]).token == "from-env"
    given = build_parser().parse_args(["init", "s.json", "-o", "f", "--token", "flag"])
    assert given.token == "flag"
    monkeypatch.delenv("WEIGHTINIT_TOKEN")
    assert build_parser().parse_args(["init", "s.json", "-o", "f"]).token is None


def test_select_option_takes_names_and_regions(made, tmp_path):
    spec, model, _ = made
    whole = safetensors.numpy.load_file(str(model))
    part = tmp_path / "part.safetensors"
    result = run("init", str(spec), "-o", str(part), "-q",
                 "--select", "lm_head.weight@34,0:33,32", "--select", "fc1.bias")
    assert result.returncode == 0, result.stderr
    tensors = safetensors.numpy.load_file(str(part))
    assert set(tensors) == {"lm_head.weight", "fc1.bias"}
    assert tensors["lm_head.weight"].tobytes() == whole["lm_head.weight"][34:67].tobytes()
    assert tensors["fc1.bias"].tobytes() == whole["fc1.bias"].tobytes()
    assert run("verify", str(spec), str(part)).returncode == 1  # the spec's file is whole
    plan = json.loads(run("plan", str(spec), "--json",
                          "--select", "conv.weight@0,1,0,0:8,1,3,3").stdout)
    assert plan["tensors"][0]["offset"] == [0, 1, 0, 0]
    assert plan["tensors"][0]["full_shape"] == [8, 2, 3, 3]


def test_a_bad_region_names_its_field(made):
    spec, _, _ = made
    result = run("plan", str(spec), "--select", "fc1.weight@0,60:1,8")
    assert result.returncode == 2
    assert "select.0.shape.1" in result.stderr and "runs past" in result.stderr
    result = run("plan", str(spec), "--select", "fc1.weight@0,60")
    assert result.returncode == 2 and "NAME@OFFSET:SHAPE" in result.stderr


def test_spec_errors_name_the_file_and_line_with_a_suggestion(tmp_path):
    spec = tmp_path / "typo.json"
    spec.write_text('{\n  "seed": 1,\n  "layers": [\n'
                    '    {"type": "linear", "name": "fc", "in_features": 4, "out_features": 2},\n'
                    '    {"type": "tensor", "name": "t", "shape": [2, 2],\n'
                    '     "init": "kaiming_unifrom"}\n  ]\n}\n')
    result = run("plan", str(spec))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{spec}:6: layers.1.init: unknown initializer "
                                    "'kaiming_unifrom' (did you mean 'kaiming_uniform'?)")


def test_planner_errors_name_the_file_and_line_too(tmp_path):
    spec = tmp_path / "select.json"
    spec.write_text(json.dumps(SPEC, indent=1)[:-1] + ',\n "select": ["nope"]\n}')
    result = run("plan", str(spec))
    assert result.returncode == 2
    line = spec.read_text().splitlines().index(' "select": ["nope"]') + 1
    assert result.stderr.startswith(f"{spec}:{line}: select.0: "), result.stderr


def test_a_missing_output_directory_is_named_as_such(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    result = run("init", str(spec), "-o", str(tmp_path / "no" / "such" / "m.safetensors"))
    assert result.returncode == 2
    assert f"the output directory '{tmp_path / 'no' / 'such'}' does not exist" in result.stderr
    assert not (tmp_path / "no").exists()


def test_verify_cannot_read_exits_2_not_mismatch(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    not_safetensors = tmp_path / "junk.safetensors"
    not_safetensors.write_bytes(b"hello")
    for target in (tmp_path / "missing.safetensors", not_safetensors, tmp_path):
        result = run("verify", str(spec), str(target))
        assert result.returncode == 2, target
        assert result.stderr.startswith("CANNOT READ: ")
        assert "MISMATCH" not in result.stdout + result.stderr


def test_a_missing_extra_is_one_line_naming_it():
    from weightinit.service.cli_commands import _need_extra
    from weightinit.service.cli_refusals import Refusal

    with pytest.raises(Refusal) as caught:
        _need_extra("weightinit_no_such_module", "plots", "--plot")
    assert str(caught.value) == ("--plot needs weightinit_no_such_module: "
                                 "pip install 'weightinit[plots]'")
    _need_extra("json", "plots", "--plot")  # present: nothing to say


def test_verify_without_a_spec_uses_the_spec_the_file_carries(made, tmp_path):
    _, model, _ = made
    result = run("verify", str(model))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")
    data = bytearray(model.read_bytes())
    data[-1] ^= 0x01  # the last byte of the last tensor
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(bytes(data))
    assert run("verify", str(corrupt)).returncode == 1


def test_spec_prints_the_carried_spec_and_a_part_says_which_part(made, tmp_path):
    spec, model, _ = made
    printed = run("spec", str(model))
    assert printed.returncode == 0
    carried = json.loads(printed.stdout)
    assert carried["seed"] == SPEC["seed"] and len(carried["layers"]) == len(SPEC["layers"])
    part = tmp_path / "part.safetensors"
    assert run("init", str(spec), "-o", str(part), "-q", "--select",
               "blocks.1.proj.weight").returncode == 0
    assert json.loads(run("spec", str(part)).stdout)["select"] == ["blocks.1.proj.weight"]
    assert run("verify", str(part)).returncode == 0
    # The carried spec, written back to a file, makes the same bytes again.
    again = tmp_path / "again.json"
    again.write_text(run("spec", str(model)).stdout)
    remade = tmp_path / "remade.safetensors"
    assert run("init", str(again), "-o", str(remade), "-q").returncode == 0
    assert remade.read_bytes() == model.read_bytes()


def test_spec_of_a_file_without_one_is_a_one_line_refusal(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"w": np.zeros(2, dtype=np.float32)}, str(foreign))
    result = run("spec", str(foreign))
    assert result.returncode == 2
    assert "carries no weightinit spec" in result.stderr
    assert run("verify", str(foreign)).returncode == 2


def test_files_get_the_umask_permissions_not_0600(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    out = tmp_path / "w.safetensors"
    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        result = subprocess.run([*weightinit_command(), "init", str(spec), "-o", str(out), "-q"],
                                preexec_fn=lambda umask=umask: os.umask(umask), check=False)
        assert result.returncode == 0
        assert out.stat().st_mode & 0o777 == mode, oct(umask)


def test_init_shows_a_progress_bar_on_a_terminal_only(tmp_path):
    import fcntl
    import pty
    import termios

    spec = tmp_path / "spec.json"
    # 80 MB: long enough for tqdm (which redraws at most every 0.1 s) to draw the bar.
    spec.write_text(json.dumps({"seed": 1, "layers": [
        {"type": "tensor", "name": "w", "shape": [5000, 4000], "init": "glorot_uniform"}]}))
    leader, follower = pty.openpty()
    # A terminal 80 columns wide, as a user's is (a fresh pty has 0, and tqdm draws nothing).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen([*weightinit_command(), "init", str(spec), "-o",
                                str(tmp_path / "w.safetensors")], stderr=follower,
                               stdout=subprocess.DEVNULL)
    os.close(follower)
    seen = b""
    while True:
        try:
            piece = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not piece:
            break
        seen += piece
    assert process.wait(timeout=60) == 0
    os.close(leader)
    assert b"init:" in seen and b"B/s" in seen  # tqdm's bar, drawn on the terminal
    piped = run("init", str(spec), "-o", str(tmp_path / "v.safetensors"))
    assert "init:" not in piped.stderr and piped.stderr.startswith("wrote ")


def test_a_very_large_output_is_announced_with_its_size(tmp_path, capsys):
    from weightinit.service.cli_commands import LARGE_OUTPUT_BYTES, _warn_if_large

    _warn_if_large(LARGE_OUTPUT_BYTES - 1, str(tmp_path / "small.safetensors"))
    assert capsys.readouterr().err == ""
    _warn_if_large(40 * 10**9, str(tmp_path / "big.safetensors"))
    assert f"warning: {tmp_path / 'big.safetensors'} will be 40.0 GB" in capsys.readouterr().err


def test_layers_and_initializers_list_every_name():
    from weightinit.core.initializers import REGISTRY

    layers = run("layers").stdout
    for layer_type in ("linear:", "conv1d / conv2d / conv3d:", "multihead_attention:",
                       "lstm:", "repeat:"):
        assert layer_type in layers
    assert "    in_features: required" in layers
    listed = run("initializers").stdout
    for name in REGISTRY:
        assert f"\n{name} (" in "\n" + listed
    assert "    std: default 1.0" in listed  # trunc_normal's torch default


def test_plan_prints_a_table_with_totals(made):
    spec, _, report = made
    table = run("plan", str(spec)).stdout.splitlines()
    assert table[0].split() == ["tensor", "shape", "dtype", "initializer", "std"]
    rows = {line.split()[0]: line.split() for line in table[2:] if line and "  " in line}
    for tensor in report["tensors"]:
        row = rows[tensor["name"]]
        assert row[1] == "x".join(map(str, tensor["shape"]))
        assert row[3].startswith(tensor["initializer"]["name"])
        assert float(row[-1]) == pytest.approx(tensor["expected_variance"] ** 0.5, rel=1e-3)
    total = report["total_parameters"]
    assert table[-1].startswith(f"{len(report['tensors'])} tensors, {total:,} parameters")


SMALL_INIT = """
import json, runpy, sys
sys.argv = ["weightinit", "init", "spec.json", "-q", "-o", "w.safetensors",
            "--report", "r.json"]
try:
    runpy.run_module("weightinit.service.cli", run_name="__main__")
except SystemExit as done:
    assert not done.code, done.code
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""
HEAVY = {"numba", "llvmlite", "scipy", "fastapi", "starlette", "uvicorn", "httpx", "torch",
         "keras", "transformers", "matplotlib"}


def test_a_small_model_is_made_without_loading_heavy_modules(tmp_path):
    """The command's start time is its imports: a small ``init`` (report included) loads
    neither numba (with the scipy it pulls in), nor the web stack, nor a framework
    (benchmarks/cli_start.py measures the time)."""
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    done = subprocess.run([sys.executable, "-c", SMALL_INIT], cwd=tmp_path, text=True,
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert not HEAVY & set(json.loads(done.stdout.splitlines()[-1]))
    assert json.loads((tmp_path / "r.json").read_text())["tensors"]
