"""``weightinit.core.report``: the plan and report documents."""

from __future__ import annotations

import hashlib
from pathlib import Path

from weightinit.core import Spec, build_plan, generate_report, plan_document, write_file

SPEC = Spec.model_validate({"seed": 3, "layers": [
    {"type": "linear", "name": "fc1", "in_features": 6, "out_features": 5},
    {"type": "layer_norm", "name": "ln", "normalized_shape": [5]},
    {"type": "linear", "name": "fc2", "in_features": 5, "out_features": 2, "bias": False},
]})


def test_generated_report_describes_the_file_write_file_makes(tmp_path: Path) -> None:
    plan = build_plan(SPEC)
    report = generate_report(plan)
    path = tmp_path / "model.safetensors"
    observer = write_file(plan, path, with_stats=True)
    assert report["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert report["file_sha256"] == observer.file_sha256.hexdigest()
    assert [t["name"] for t in report["tensors"]] == [o.plan.name for o in plan.outputs]
    for entry in report["tensors"]:
        assert entry["min"] <= entry["mean"] <= entry["max"]
        assert entry["variance"] >= 0 and len(entry["sha256"]) == 64
    ln_weight = next(t for t in report["tensors"] if t["name"] == "ln.weight")
    assert (ln_weight["mean"], ln_weight["variance"]) == (1.0, 0.0)


def test_layers_group_their_tensors_in_first_appearance_order() -> None:
    document = plan_document(build_plan(SPEC))
    groups = document["layers"]
    assert [g["layer"] for g in groups] == ["fc1", "ln", "fc2"]
    assert [g["tensor_count"] for g in groups] == [2, 2, 1]
    assert [g["parameters"] for g in groups] == [35, 10, 10]
    assert sum(g["parameters"] for g in groups) == document["total_parameters"]
