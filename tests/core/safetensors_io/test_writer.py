"""The safetensors header: computed from the plan, aligned, strings-only metadata."""

from __future__ import annotations

import hashlib
import json
import struct

import pytest
from engine_helpers import spec_of, tensor_layer
from weightinit.core import build_plan, file_size, header_bytes
from weightinit.core.dtypes import ITEMSIZE

LAYERS = [
    {"type": "linear", "name": "fc1", "in_features": 5, "out_features": 3},
    tensor_layer("odd", [3], "zeros", dtype="bfloat16"),
    tensor_layer("f16", [7], "ones", dtype="float16"),
    tensor_layer("f64", [2, 2], {"name": "normal", "std": 1.0}, dtype="float64"),
]
METADATA_KEYS = {"spec", "algorithm", "seed", "spec_sha256", "convention", "expected_stats"}


def parsed(header: bytes) -> tuple[int, dict]:
    (length,) = struct.unpack("<Q", header[:8])
    assert length == len(header) - 8
    return length, json.loads(header[8:])


@pytest.mark.parametrize("convention", ["torch", "keras"])
def test_header_is_padded_to_eight_and_offsets_are_aligned(convention):
    plan = build_plan(spec_of(LAYERS, convention=convention))
    header = header_bytes(plan)
    length, document = parsed(header)
    assert length % 8 == 0
    end = 0
    for output in plan.outputs:
        entry = document[output.name]
        start, stop = entry["data_offsets"]
        assert start == end, "offsets tile the data section in file order"
        assert start % ITEMSIZE[output.plan.dtype] == 0
        assert stop - start == output.nbytes
        end = stop
    assert file_size(plan) == len(header) + end


def test_header_dtypes_and_shapes():
    document = parsed(header_bytes(build_plan(spec_of(LAYERS))))[1]
    assert document["f64"] == {"dtype": "F64", "shape": [2, 2], "data_offsets": [0, 32]}
    assert document["fc1.weight"]["dtype"] == "F32"
    assert document["fc1.weight"]["shape"] == [3, 5]
    assert document["odd"]["dtype"] == "BF16" and document["f16"]["dtype"] == "F16"


def test_metadata_values_are_all_strings_with_the_expected_keys():
    plan = build_plan(spec_of(LAYERS, seed=2**64 - 1))
    metadata = parsed(header_bytes(plan))[1]["__metadata__"]
    assert all(isinstance(value, str) for value in metadata.values())
    assert set(metadata) == METADATA_KEYS | {"format"}
    assert metadata["format"] == "pt" and metadata["seed"] == str(2**64 - 1)
    assert metadata["spec_sha256"] == plan.spec_sha256 and metadata["algorithm"] == "v1"
    # The canonical model part, whose sha256 is spec_sha256; no package version.
    assert json.loads(metadata["spec"]) == plan.spec.model_part()
    assert hashlib.sha256(metadata["spec"].encode()).hexdigest() == plan.spec_sha256
    stats = json.loads(metadata["expected_stats"])
    assert set(stats) == {o.name for o in plan.outputs}
    assert stats["fc1.weight"]["expected_variance"] == pytest.approx(1 / (3 * 5))
    assert stats["fc1.weight"]["initializer"] == "torch_default"


def test_keras_metadata_has_no_torch_format_and_select_shard_are_recorded():
    plan = build_plan(spec_of(LAYERS[1:], convention="keras", select=["f64"],
                              shard={"dim": 0, "rank": 1, "world_size": 2}))
    metadata = parsed(header_bytes(plan))[1]["__metadata__"]
    assert set(metadata) == METADATA_KEYS | {"select", "shard", "regions"}
    assert json.loads(metadata["select"]) == ["f64"]
    assert json.loads(metadata["shard"]) == {"dim": 0, "rank": 1, "world_size": 2}
    assert json.loads(metadata["regions"]) == {
        "f64": {"offset": [1, 0], "shape": [1, 2], "full_shape": [2, 2]}}


def test_regions_are_recorded_with_their_full_shape_and_whole_tensors_are_not():
    select = ["odd", {"name": "f64", "offset": [0, 1], "shape": [2, 1]},
              {"name": "f16", "offset": [0], "shape": [7]}]
    plan = build_plan(spec_of(LAYERS, select=select))
    document = parsed(header_bytes(plan))[1]
    metadata = document["__metadata__"]
    assert json.loads(metadata["select"]) == select
    # f16's region is the whole tensor: not a part, so not listed as one.
    assert json.loads(metadata["regions"]) == {
        "f64": {"offset": [0, 1], "shape": [2, 1], "full_shape": [2, 2]}}
    assert document["f64"]["shape"] == [2, 1] and document["f16"]["shape"] == [7]


def test_whole_tensor_selection_has_no_regions_key():
    plan = build_plan(spec_of(LAYERS, select=["f64", {"name": "odd"}]))
    metadata = parsed(header_bytes(plan))[1]["__metadata__"]
    assert "regions" not in metadata
    assert json.loads(metadata["select"]) == ["f64", "odd"]
