"""Files that the standard loaders read, and ``verify_file`` against them."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy for safetensors.numpy)
import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from engine_helpers import generate, spec_of, tensor_layer
from safetensors import safe_open
from weightinit.core import build_plan, verify_file, write_file

LAYERS = [
    {"type": "linear", "name": "fc1", "in_features": 33, "out_features": 17},
    {"type": "conv2d", "name": "conv", "in_channels": 4, "out_channels": 6, "kernel_size": 3,
     "dtype": "bfloat16"},
    tensor_layer("half", [9, 5], "glorot_normal", dtype="float16"),
    tensor_layer("wide", [4, 3], {"name": "normal", "std": 2.0}, dtype="float64"),
    tensor_layer("ortho", [6, 4], "orthogonal"),
]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A written file, its plan and the expected tensors."""
    plan = build_plan(spec_of(LAYERS))
    path = tmp_path_factory.mktemp("files") / "model.safetensors"
    observer = write_file(plan, path, with_stats=True, chunk_bytes=64)
    return path, plan, generate(plan), observer


def as_bits(values) -> bytes:
    """Raw bytes of a numpy array or a torch tensor (bf16 included)."""
    if isinstance(values, torch.Tensor):
        return values.contiguous().view(torch.uint8).numpy().tobytes()
    return np.ascontiguousarray(values).tobytes()


def test_safe_open_numpy_and_torch_read_every_tensor(written):
    path, _plan, expected, _ = written
    for framework in ("np", "pt"):
        with safe_open(str(path), framework=framework) as handle:
            assert set(handle.keys()) == set(expected)
            for name, values in expected.items():
                tensor = handle.get_tensor(name)
                assert tuple(tensor.shape) == values.shape
                assert as_bits(tensor) == values.tobytes(), (framework, name)
            assert handle.metadata()["algorithm"] == "v1"


def test_load_file_numpy_and_torch(written):
    path, _, expected, _ = written
    from_numpy = safetensors.numpy.load_file(str(path))
    from_torch = safetensors.torch.load_file(str(path))
    for name, values in expected.items():
        assert from_numpy[name].dtype == values.dtype
        assert as_bits(from_numpy[name]) == values.tobytes()
        assert as_bits(from_torch[name]) == values.tobytes()
    assert from_torch["conv.weight"].dtype == torch.bfloat16
    assert from_torch["wide"].dtype == torch.float64


def test_torch_module_loads_the_state_dict_strictly(written):
    path, _, _, _ = written
    state = safetensors.torch.load_file(str(path))
    module = torch.nn.Linear(33, 17)
    module.load_state_dict({k.removeprefix("fc1."): v for k, v in state.items()
                            if k.startswith("fc1.")}, strict=True)


def test_observer_sha256_is_the_files_and_no_temporary_is_left(written):
    path, _, expected, observer = written
    data = path.read_bytes()
    assert observer.file_sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    for name, values in expected.items():
        assert observer.tensors[name].sha256.hexdigest() == hashlib.sha256(
            values.tobytes()).hexdigest()
    assert os.listdir(path.parent) == [path.name]


def test_verify_accepts_the_file(written):
    path, plan, _, _ = written
    result = verify_file(plan, path)
    assert result.ok, result.message


def flip_byte(source, target, position: int) -> None:
    data = bytearray(source.read_bytes())
    data[position] ^= 0x01
    target.write_bytes(bytes(data))


@pytest.mark.parametrize("victim", ["fc1.bias", "conv.weight", "wide", "ortho"])
def test_verify_names_the_tensor_with_a_flipped_byte(written, tmp_path, victim):
    path, plan, _, _ = written
    (length,) = struct.unpack("<Q", path.read_bytes()[:8])
    output = next(o for o in plan.outputs if o.name == victim)
    corrupt = tmp_path / "corrupt.safetensors"
    flip_byte(path, corrupt, 8 + length + output.offset + output.nbytes // 2)
    result = verify_file(plan, corrupt)
    assert not result.ok
    assert result.tensor == victim and victim in result.message


def test_verify_reports_a_truncated_file(written, tmp_path):
    path, plan, _, _ = written
    truncated = tmp_path / "short.safetensors"
    truncated.write_bytes(path.read_bytes()[:-10])
    result = verify_file(plan, truncated)
    assert not result.ok and "bytes" in result.message
    truncated.write_bytes(path.read_bytes()[:5])
    assert not verify_file(plan, truncated).ok


def test_verify_rejects_a_file_of_another_seed(written):
    path, _, _, _ = written
    other = build_plan(spec_of(LAYERS, seed=999))
    result = verify_file(other, path)
    assert not result.ok and "seed" in result.message


def test_a_file_that_names_its_producer_still_verifies(written, tmp_path):
    """Files of releases that put the package version in __metadata__ still verify."""
    path, plan, _, _ = written
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + length].rstrip(b" ")
    assert b"weightinit_version" not in header
    patched = header.replace(b'"__metadata__":{', b'"__metadata__":{"weightinit_version":"0.0.1",')
    patched += b" " * (-len(patched) % 8)
    other = tmp_path / "other.safetensors"
    other.write_bytes(struct.pack("<Q", len(patched)) + patched + data[8 + length :])
    assert verify_file(plan, other).ok


def test_the_file_carries_the_spec_that_makes_it_again(written):
    from weightinit.core import Spec
    from weightinit.core.safetensors_io.files import carried_spec

    path, plan, _, _ = written
    again = build_plan(Spec.model_validate(carried_spec(path)))
    assert again.spec_sha256 == plan.spec_sha256
    assert verify_file(again, path).ok


def test_verify_reports_a_missing_or_foreign_file(written, tmp_path):
    _, plan, _, _ = written
    assert not verify_file(plan, tmp_path / "missing.safetensors").ok
    not_a_header = tmp_path / "list.safetensors"
    not_a_header.write_bytes(struct.pack("<Q", 8) + b"[1,2,3] ")
    assert "not a JSON object" in verify_file(plan, not_a_header).message
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe\x00\x01")
    assert not verify_file(plan, garbage).ok


def test_verify_reports_metadata_that_is_not_an_object(written, tmp_path):
    """A header whose ``__metadata__`` is not a JSON object is a mismatch, not a crash."""
    path, plan, _, _ = written
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header["__metadata__"] = ["not", "an", "object"]
    text = json.dumps(header).encode()
    other = tmp_path / "other.safetensors"
    other.write_bytes(struct.pack("<Q", len(text)) + text)
    result = verify_file(plan, other)
    assert not result.ok and "__metadata__" in result.message


def test_failed_generation_leaves_neither_file_nor_temporary(tmp_path, monkeypatch):
    """write_file is atomic: a failure mid-stream leaves the target as it was."""
    import weightinit.core.generate

    real_run_task = weightinit.core.generate.run_task
    calls = 0

    def failing_run_task(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("disk on fire")
        return real_run_task(*args, **kwargs)

    monkeypatch.setattr(weightinit.core.generate, "run_task", failing_run_task)
    target = tmp_path / "model.safetensors"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_file(build_plan(spec_of(LAYERS)), target, chunk_bytes=64)
    assert list(tmp_path.iterdir()) == []
