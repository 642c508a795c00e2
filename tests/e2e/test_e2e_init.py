"""End to end through a real socket: the file, its headers, multipart, report, slices."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import pytest
import torch
from e2e_helpers import RunningServer, weightinit_command
from safetensors.torch import load as load_safetensors
from safetensors.torch import load_file
from torch import nn

# torch.nn.Sequential indices: 0 conv, 1 relu, 2 conv, 3 relu, 4 flatten, 5 linear, ...
SEQUENTIAL = {
    "seed": 42,
    "convention": "torch",
    "layers": [
        {"type": "conv2d", "name": "0", "in_channels": 3, "out_channels": 8, "kernel_size": 3},
        {"type": "conv2d", "name": "2", "in_channels": 8, "out_channels": 16,
         "kernel_size": [3, 3], "groups": 2},
        {"type": "linear", "name": "5", "in_features": 256, "out_features": 32},
        {"type": "linear", "name": "7", "in_features": 32, "out_features": 8,
         "weight_init": "xavier_uniform", "bias_init": "zeros"},
    ],
}
MIXED = {
    "seed": 2**64 - 1,
    "dtype": "float32",
    "layers": [
        {"type": "linear", "name": "fc", "in_features": 48, "out_features": 16,
         "weight_init": {"name": "kaiming_normal", "nonlinearity": "relu"}},
        {"type": "repeat", "name": "blocks", "count": 2, "layers": [
            {"type": "tensor", "name": "w", "shape": [16, 16], "dtype": "bfloat16",
             "init": {"name": "truncated_normal", "mean": 0.0, "std": 0.02}},
            {"type": "linear", "name": "proj", "in_features": 16, "out_features": 16,
             "dtype": "float16"},
        ]},
    ],
}


def torch_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3, groups=2), nn.ReLU(), nn.Flatten(),
        nn.Linear(256, 32), nn.ReLU(), nn.Linear(32, 8),
    )


def post(server: RunningServer, path: str, spec: dict, **headers: str):
    with server.client() as client:
        response = client.post(path, content=json.dumps(spec).encode(),
                               headers={"content-type": "application/json", **headers})
    return response


@pytest.mark.parametrize("spec", [SEQUENTIAL, MIXED], ids=["sequential", "mixed"])
def test_init_body_is_byte_identical_to_the_cli(server: RunningServer, tmp_path: Path,
                                                spec: dict) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    out = tmp_path / "cli.safetensors"
    subprocess.run([*weightinit_command(), "init", str(spec_file), "-o", str(out), "-q"],
                   check=True, timeout=300)
    response = post(server, "/v1/init", spec)
    assert response.status_code == 200
    assert response.content == out.read_bytes()


def test_init_loads_into_a_torch_sequential_strictly(server: RunningServer, tmp_path: Path
                                                     ) -> None:
    saved = tmp_path / "model.safetensors"
    saved.write_bytes(post(server, "/v1/init", SEQUENTIAL).content)
    tensors = load_file(saved)
    model = torch_model()
    model.load_state_dict(tensors, strict=True)
    assert torch.equal(model[5].weight, tensors["5.weight"])
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 8)
    assert torch.count_nonzero(model[7].bias) == 0  # bias_init zeros


def test_content_length_is_the_body_size_and_the_planned_size(server: RunningServer) -> None:
    response = post(server, "/v1/init", MIXED)
    plan = post(server, "/v1/plan", MIXED).json()
    assert int(response.headers["content-length"]) == len(response.content) == plan[
        "file_bytes"]


def test_etag_then_if_none_match_gets_304(server: RunningServer) -> None:
    etag = post(server, "/v1/init", SEQUENTIAL).headers["etag"]
    again = post(server, "/v1/init", SEQUENTIAL, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = post(server, "/v1/init", {**SEQUENTIAL, "seed": 43}, **{"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag


def test_multipart_file_part_then_report_with_its_sha256(server: RunningServer) -> None:
    plain = post(server, "/v1/init", MIXED).content
    response = post(server, "/v1/init", MIXED, Accept="multipart/mixed")
    assert response.status_code == 200
    raw = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    file_part, report_part = BytesParser(policy=HTTP).parsebytes(raw + response.content
                                                                 ).iter_parts()
    data = file_part.get_payload(decode=True)
    report = json.loads(report_part.get_payload(decode=True))
    assert file_part.get_content_type() == "application/octet-stream"
    assert report_part.get_content_type() == "application/json"
    assert data == plain
    assert report["file_sha256"] == hashlib.sha256(data).hexdigest()
    tensors = load_safetensors(data)
    for entry in report["tensors"]:
        tensor = tensors[entry["name"]].double()
        assert entry["sha256"] == hashlib.sha256(
            tensors[entry["name"]].contiguous().view(torch.uint8).numpy().tobytes()
        ).hexdigest()
        assert entry["min"] == tensor.min().item() and entry["max"] == tensor.max().item()


def test_plan_and_report_agree_with_the_file(server: RunningServer) -> None:
    body = post(server, "/v1/init", MIXED).content
    plan = post(server, "/v1/plan", MIXED).json()
    report = post(server, "/v1/report", MIXED).json()
    assert report["file_sha256"] == hashlib.sha256(body).hexdigest()
    assert [(t["name"], t["shape"]) for t in report["tensors"]] == [
        (t["name"], t["shape"]) for t in plan["tensors"]]
    assert report["total_parameters"] == plan["total_parameters"]
    assert set(load_safetensors(body)) == {t["name"] for t in plan["tensors"]}


def test_select_returns_exactly_the_named_full_tensors(server: RunningServer) -> None:
    full = load_safetensors(post(server, "/v1/init", MIXED).content)
    names = ["blocks.1.w", "fc.bias"]
    part = load_safetensors(post(server, "/v1/init", {**MIXED, "select": names}).content)
    assert set(part) == set(names)
    for name in names:
        assert torch.equal(part[name], full[name])


def test_all_ranks_of_a_shard_concatenate_to_the_full_tensors(server: RunningServer) -> None:
    full = load_safetensors(post(server, "/v1/init", SEQUENTIAL).content)
    ranks = [
        load_safetensors(post(server, "/v1/init", {
            **SEQUENTIAL, "shard": {"dim": 0, "rank": rank, "world_size": 4}}).content)
        for rank in range(4)
    ]
    for name, tensor in full.items():
        assert all(r[name].shape[0] == tensor.shape[0] // 4 for r in ranks)
        assert torch.equal(torch.cat([r[name] for r in ranks], dim=0), tensor)


def test_shard_along_dim_1_of_selected_weights(server: RunningServer) -> None:
    full = load_safetensors(post(server, "/v1/init", MIXED).content)
    names = ["fc.weight", "blocks.0.w"]
    ranks = [
        load_safetensors(post(server, "/v1/init", {
            **MIXED, "select": names, "shard": {"dim": 1, "rank": rank, "world_size": 4},
        }).content)
        for rank in range(4)
    ]
    for name in names:
        assert torch.equal(torch.cat([r[name] for r in ranks], dim=1), full[name])


def golden_tables() -> tuple[dict, dict]:
    """The v1 golden specs and digests of ``tests/core`` (one table, not a copy)."""
    core_tests = str(Path(__file__).resolve().parents[1] / "core")
    if core_tests not in sys.path:
        sys.path.insert(0, core_tests)
    from golden_specs import GOLDEN_SPECS
    from test_golden import GOLDEN

    return GOLDEN_SPECS, GOLDEN


@pytest.mark.parametrize("key", ["every_initializer_float32", "keras_float32", "bfloat16",
                                 "int64_batch_norm"])
def test_served_bytes_are_the_golden_vectors(server: RunningServer, key: str) -> None:
    """The server's streaming path (worker threads, coalesced chunks, a socket) sends the
    algorithm-v1 bytes pinned in tests/core/test_golden.py, tensor by tensor."""
    specs, golden = golden_tables()
    response = post(server, "/v1/init", specs[key])
    assert response.status_code == 200
    body = response.content
    (header_length,) = struct.unpack("<Q", body[:8])
    header = json.loads(body[8 : 8 + header_length])
    data = body[8 + header_length :]
    got = {name: hashlib.sha256(data[entry["data_offsets"][0] : entry["data_offsets"][1]])
           .hexdigest() for name, entry in header.items() if name != "__metadata__"}
    got["<data>"] = hashlib.sha256(data).hexdigest()
    assert got == {name: digest for name, digest in golden[key].items() if name != "<file>"}


def test_regions_are_the_slices_of_the_full_tensors(server: RunningServer) -> None:
    """Uneven regions (torch.chunk's 3 + 3 + 2 of a dim of 8), mixed with plain names."""
    full = load_safetensors(post(server, "/v1/init", MIXED).content)
    select = [
        {"name": "fc.weight", "offset": [6, 0], "shape": [4, 48]},
        {"name": "blocks.1.w", "offset": [3, 5], "shape": [13, 2]},
        {"name": "fc.bias", "offset": [14], "shape": [2]},
        "blocks.0.proj.weight",
    ]
    response = post(server, "/v1/init", {**MIXED, "select": select})
    part = load_safetensors(response.content)
    assert torch.equal(part["fc.weight"], full["fc.weight"][6:10])
    assert torch.equal(part["blocks.1.w"], full["blocks.1.w"][3:16, 5:7])
    assert torch.equal(part["fc.bias"], full["fc.bias"][14:16])
    assert torch.equal(part["blocks.0.proj.weight"], full["blocks.0.proj.weight"])
    (length,) = struct.unpack("<Q", response.content[:8])
    metadata = json.loads(response.content[8 : 8 + length])["__metadata__"]
    assert json.loads(metadata["regions"])["blocks.1.w"] == {
        "offset": [3, 5], "shape": [13, 2], "full_shape": [16, 16]}
    assert "blocks.0.proj.weight" not in json.loads(metadata["regions"])
    plan = post(server, "/v1/plan", {**MIXED, "select": select}).json()
    entry = next(t for t in plan["tensors"] if t["name"] == "blocks.1.w")
    assert (entry["shape"], entry["offset"], entry["full_shape"]) == ([13, 2], [3, 5], [16, 16])
    assert plan["file_bytes"] == len(response.content)
    report = post(server, "/v1/report", {**MIXED, "select": select}).json()
    assert report["file_sha256"] == hashlib.sha256(response.content).hexdigest()
    assert response.headers["etag"] != post(server, "/v1/init", {
        **MIXED, "select": [{**select[0], "offset": [5, 0]}, *select[1:]]}).headers["etag"]
