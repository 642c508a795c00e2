"""``write_file`` hashes each tensor only when a report is asked for (``with_stats``).

A sha256 pass costs about as much CPU as generating bfloat16 normals, so a plain write
computes the file's sha256 (what ``weightinit init`` prints) and nothing per tensor.
"""

from __future__ import annotations

import hashlib

from engine_helpers import spec_of, tensor_layer
from weightinit.core import build_plan, write_file

LAYERS = [tensor_layer("a", [64, 33], "glorot_uniform"),
          tensor_layer("b", [17], {"name": "normal", "std": 0.5}, dtype="bfloat16")]


def test_a_plain_write_keeps_the_file_sha256_and_skips_the_tensors(tmp_path):
    plan = build_plan(spec_of(LAYERS))
    observer = write_file(plan, tmp_path / "plain.safetensors", chunk_bytes=64)
    data = (tmp_path / "plain.safetensors").read_bytes()
    assert observer.file_sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    assert observer.tensors == {}


def test_a_write_with_statistics_hashes_every_tensor_and_the_same_file(tmp_path):
    plan = build_plan(spec_of(LAYERS))
    plain = write_file(plan, tmp_path / "plain.safetensors")
    full = write_file(plan, tmp_path / "full.safetensors", with_stats=True)
    assert full.file_sha256.hexdigest() == plain.file_sha256.hexdigest()
    assert set(full.tensors) == {"a", "b"}
    assert all(t.moments.count > 0 for t in full.tensors.values())
