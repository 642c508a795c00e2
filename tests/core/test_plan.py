"""The plan: names, order, offsets, dtypes, limits and the plan document."""

from __future__ import annotations

import math

import pytest
from engine_helpers import spec_of, tensor_layer
from weightinit.core import LimitError, Limits, SpecError, build_plan, plan_document
from weightinit.core.dtypes import ITEMSIZE

MLP = [
    {"type": "linear", "name": "fc1", "in_features": 8, "out_features": 6},
    {"type": "linear", "name": "fc2", "in_features": 6, "out_features": 2, "dtype": "bfloat16",
     "bias": False},
    tensor_layer("head", [2, 3], {"name": "normal", "std": 0.02}, dtype="float64"),
]


def test_outputs_widest_dtype_first_then_spec_order_with_tiling_offsets():
    plan = build_plan(spec_of(MLP))
    assert [o.name for o in plan.outputs] == ["head", "fc1.weight", "fc1.bias", "fc2.weight"]
    offset = 0
    for output in plan.outputs:
        assert output.offset == offset
        assert output.offset % ITEMSIZE[output.plan.dtype] == 0
        offset += output.nbytes
    assert plan.total_bytes == offset == 6 * 8 + (48 + 6) * 4 + 12 * 2
    assert plan.total_parameters == 6 + 48 + 6 + 12


def test_repeat_names_follow_each_convention():
    block = [{"type": "linear", "name": "proj", "in_features": 2, "out_features": 2}]
    nested = {"type": "repeat", "name": "blocks", "count": 2, "layers": [
        {"type": "repeat", "name": "sub", "count": 2, "layers": block}]}
    torch_names = {o.name for o in build_plan(spec_of([nested])).outputs}
    assert torch_names == {f"blocks.{i}.sub.{j}.proj.{p}" for i in range(2) for j in range(2)
                           for p in ("weight", "bias")}
    keras_names = {o.name for o in build_plan(spec_of([nested], convention="keras")).outputs}
    assert keras_names == {f"blocks_{i}/sub_{j}/proj/{p}" for i in range(2) for j in range(2)
                           for p in ("kernel", "bias")}


def test_dtype_from_spec_layer_and_repeat():
    repeat = {"type": "repeat", "name": "r", "count": 1, "dtype": "float16", "layers": [
        {"type": "linear", "name": "a", "in_features": 2, "out_features": 2},
        {"type": "linear", "name": "b", "in_features": 2, "out_features": 2, "dtype": "float64"},
    ]}
    plan = build_plan(spec_of([repeat, MLP[0]], dtype="bfloat16"))
    dtypes = {o.name: o.plan.dtype for o in plan.outputs}
    assert dtypes["r.0.a.weight"] == "float16"
    assert dtypes["r.0.b.weight"] == "float64"
    assert dtypes["fc1.weight"] == "bfloat16"


def test_shard_output_shape_and_runs():
    plan = build_plan(spec_of([tensor_layer("w", [4, 6, 2], "zeros")],
                              shard={"dim": 1, "rank": 2, "world_size": 3}))
    output = plan.outputs[0]
    assert output.shape == (4, 2, 2)
    assert list(output.runs) == [(8 + 12 * k, 4) for k in range(4)]


def test_plan_document_lists_every_tensor_with_its_expectations():
    document = plan_document(build_plan(spec_of(MLP)))
    assert document["algorithm"] == "v1"
    assert document["total_parameters"] == 72
    assert len(document["spec_sha256"]) == 64
    entry = next(t for t in document["tensors"] if t["name"] == "fc1.weight")
    assert entry["shape"] == [6, 8] and entry["dtype"] == "float32"
    assert entry["initializer"] == {"name": "torch_default"}
    assert (entry["fan_in"], entry["fan_out"]) == (8, 6)
    assert entry["bound"] == pytest.approx(1 / math.sqrt(8))
    assert entry["expected_variance"] == pytest.approx(1 / (3 * 8))
    head = next(t for t in document["tensors"] if t["name"] == "head")
    assert head["std"] == 0.02 and head["expected_variance"] == pytest.approx(0.02**2)
    assert [group["layer"] for group in document["layers"]] == ["head", "fc1", "fc2"]


@pytest.mark.parametrize(
    ("limits", "loc"),
    [
        (Limits(max_tensors=3), ("layers",)),
        (Limits(max_parameters=71), ("layers",)),
    ],
)
def test_limits_are_413_before_expansion(limits, loc):
    with pytest.raises(LimitError) as error:
        build_plan(spec_of(MLP), limits)
    assert error.value.status == 413 and error.value.loc == loc


def test_huge_repeat_is_refused_without_expanding_it():
    layer = {"type": "linear", "name": "fc", "in_features": 4096, "out_features": 4096}
    huge = {"type": "repeat", "name": "r", "count": 10**6, "layers": [layer]}
    with pytest.raises(LimitError):
        build_plan(spec_of([huge]))


@pytest.mark.parametrize("layer_type", ["lstm", "gru"])
def test_huge_num_layers_is_refused_without_expanding_every_layer(monkeypatch, layer_type):
    import weightinit.core.layers.base

    real_tensor = weightinit.core.layers.base.Expansion.tensor
    planned = 0

    def counting_tensor(self, *args, **kwargs):
        nonlocal planned
        planned += 1
        # 10x the limit below: counting may plan a layer's worth of tensors, not all.
        if planned > 1000:
            raise AssertionError("planned over 1000 tensors against a limit of 100")
        return real_tensor(self, *args, **kwargs)

    monkeypatch.setattr(weightinit.core.layers.base.Expansion, "tensor", counting_tensor)
    layer = {"type": layer_type, "name": "rnn", "input_size": 2, "hidden_size": 2,
             "num_layers": 10**6}
    with pytest.raises(LimitError) as refused:
        build_plan(spec_of([layer]), Limits(max_tensors=100))
    assert refused.value.loc == ("layers",)
    assert "counting stopped at layers.0" in refused.value.msg


def test_a_model_of_exactly_the_tensor_limit_is_planned():
    # A bidirectional one-layer torch LSTM with biases: 2 directions x 4 tensors.
    lstm = {"type": "lstm", "name": "rnn", "input_size": 2, "hidden_size": 2,
            "bidirectional": True}
    assert len(build_plan(spec_of([lstm]), Limits(max_tensors=8)).outputs) == 8
    with pytest.raises(LimitError):
        build_plan(spec_of([lstm]), Limits(max_tensors=7))
    repeated = {"type": "repeat", "name": "r", "count": 3, "layers": [lstm]}
    assert len(build_plan(spec_of([repeated]), Limits(max_tensors=24)).outputs) == 24
    with pytest.raises(LimitError):
        build_plan(spec_of([repeated]), Limits(max_tensors=23))


def test_repeat_nesting_deeper_than_the_limit_is_refused():
    layer: dict = {"type": "linear", "name": "fc", "in_features": 2, "out_features": 2}
    for depth in range(4):
        layer = {"type": "repeat", "name": f"r{depth}", "count": 1, "layers": [layer]}
    build_plan(spec_of([layer]), Limits(max_depth=4))
    with pytest.raises(SpecError) as error:
        build_plan(spec_of([layer]), Limits(max_depth=3))
    assert error.value.loc[-1] == "layers"


def test_whole_tensor_initializer_over_the_limit_is_refused():
    spec = spec_of([tensor_layer("q", [100, 100], "orthogonal")])
    with pytest.raises(LimitError):
        build_plan(spec, Limits(max_whole_tensor_elements=9999))
    build_plan(spec, Limits(max_whole_tensor_elements=10000))
