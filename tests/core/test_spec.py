"""Invalid specs are rejected before anything is generated, with a ``loc`` naming the field.

A request error surfaces either as a Pydantic ``ValidationError`` (schema) or as a
``SpecError`` from ``build_plan`` (semantic: fans, names, select, shard); both carry the
path of the offending field in the request body.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from weightinit.core import Spec, SpecError, build_plan


def body(*layers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"seed": 1, "convention": "torch", "layers": list(layers), **fields}


def tensor(init: Any, shape: list[int] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "tensor", "name": "w", "shape": shape or [4, 3], "init": init, **extra}


def linear(**fields: Any) -> dict[str, Any]:
    return {"type": "linear", "name": "fc", "in_features": 4, "out_features": 3, **fields}


def errors_of(request: dict[str, Any] | str) -> list[tuple[tuple, str]]:
    """The (loc, msg) pairs that planning this request raises; fails if it is accepted."""
    try:
        if isinstance(request, str):
            spec = Spec.model_validate_json(request)
        else:
            spec = Spec.model_validate(request)
        build_plan(spec)
    except ValidationError as error:
        return [(tuple(item["loc"]), item["msg"]) for item in error.errors()]
    except SpecError as error:
        return [(error.loc, error.msg)]
    raise AssertionError(f"accepted: {request}")


def assert_rejected_at(request: dict[str, Any] | str, *loc_tail: str | int) -> str:
    """Rejected, with one error whose loc ends with ``loc_tail``; returns its message."""
    found = errors_of(request)
    for loc, msg in found:
        if loc[-len(loc_tail):] == loc_tail:
            return msg
    raise AssertionError(f"no error at ...{loc_tail}: {found}")


# ------------------------------------------------------------- initializer params ----


@pytest.mark.parametrize(
    ("init", "field"),
    [
        ({"name": "variance_scaling", "scale": -1.0}, "scale"),
        ({"name": "variance_scaling", "scale": 0.0}, "scale"),
        ({"name": "uniform", "low": 1.0, "high": 0.5}, "high"),
        ({"name": "random_uniform", "minval": 0.5, "maxval": 0.1}, "maxval"),
        ({"name": "truncated_normal", "std": 1.0, "a": 1.0, "b": -1.0}, "b"),
        ({"name": "truncated_normal", "std": 1.0, "mean": 5.0, "a": 8.0}, "b"),  # default b
        ({"name": "truncated_normal", "std": -0.1}, "std"),
        ({"name": "normal", "mean": 0.0}, "std"),  # std is required: torch and keras differ
        ({"name": "normal", "std": -1.0}, "std"),
        ({"name": "uniform", "low": -1.0}, "high"),
        ({"name": "variance_scaling", "mode": "fan_max"}, "mode"),
        ({"name": "variance_scaling", "distribution": "cauchy"}, "distribution"),
        ({"name": "kaiming_normal", "nonlinearity": "gelu"}, "nonlinearity"),
        ({"name": "kaiming_uniform", "mode": "fan_avg"}, "mode"),
        ({"name": "xavier_uniform", "gain": -1.0}, "gain"),
        ({"name": "sparse", "sparsity": 1.5}, "sparsity"),
        ({"name": "glorot_uniform", "gain": 2.0}, "gain"),  # extra key: Keras' has no gain
        ({"name": "dirac", "groups": 0}, "groups"),
    ],
    ids=lambda value: value if isinstance(value, str) else value["name"],
)
def test_invalid_initializer_parameter_is_rejected_at_its_field(init, field):
    assert_rejected_at(body(tensor(init, [4, 4, 3])), "init", init["name"], field)


def test_inverted_bounds_message_names_both_bounds():
    msg = assert_rejected_at(body(tensor({"name": "uniform", "low": 1.0, "high": 0.5})), "high")
    assert "low" in msg and "high" in msg


def test_unknown_initializer_name_is_rejected():
    msg = assert_rejected_at(body(tensor({"name": "xavier"})), "layers", 0, "tensor", "init")
    assert "xavier" in msg or "tag" in msg


def test_unknown_initializer_string_is_rejected():
    assert_rejected_at(body(linear(weight_init="he_normall")), "weight_init")


def test_unknown_keras_class_is_rejected():
    msg = assert_rejected_at(body(tensor({"class_name": "Nope", "config": {}})), "init")
    assert "Nope" in msg


def test_keras_config_with_axes_is_rejected_by_name():
    init = {"class_name": "GlorotUniform", "config": {"input_axes": [0], "output_axes": [1]}}
    assert "input_axes" in assert_rejected_at(body(tensor(init)), "init")


# ------------------------------------------------------------- fans and resolution ----


@pytest.mark.parametrize("fan", ["fan_in", "fan_out"])
def test_zero_fan_is_rejected(fan):
    assert_rejected_at(body(tensor("glorot_uniform", **{fan: 0})), fan)


def test_fan_initializer_on_a_vector_without_fans_is_rejected_at_init():
    # torch defines no fans below 2-D: the error names the initializer, not a parameter.
    found = errors_of(body(tensor({"name": "xavier_uniform"}, [5])))
    assert found[0][0] == ("layers", 0, "init")
    assert "fan_in" in found[0][1]


@pytest.mark.parametrize("init", ["kaiming_uniform", "torch_default"])
def test_fan_in_mode_on_a_vector_needs_only_the_given_fan_in(init):
    # A fan_in mode reads fan_in alone: giving it is enough, fan_out may stay undefined.
    plan = build_plan(Spec.model_validate(body(tensor(init, [8], fan_in=16))))
    assert plan.outputs[0].plan.init.derived["fan"] == 16.0
    assert "fan_out" in assert_rejected_at(body(tensor({"name": "kaiming_uniform",
                                                        "mode": "fan_out"}, [8], fan_in=16)),
                                           "init")


@pytest.mark.parametrize(("a", "b"), [(10.0, 11.0), (6.5, 7.0), (-40.0, -38.0)])
def test_truncation_interval_v1_cannot_sample_is_rejected(a, b):
    # Upper-tail probabilities near 1 hold few doubles (none past 8.3 std), and v1 clamps
    # p at 2**-1022 (37.5 std below): such intervals would give a handful of values.
    init = {"name": "truncated_normal", "std": 1.0, "a": a, "b": b}
    assert "tail" in assert_rejected_at(body(tensor(init)), "init", "b")


def test_parameters_that_overflow_are_a_spec_error_not_a_crash():
    init = {"name": "uniform", "low": -1e308, "high": 1e308}
    assert "overflow" in assert_rejected_at(body(tensor(init)), "layers", 0, "init")
    init = {"name": "normal", "std": 1e300}
    assert "overflow" in assert_rejected_at(body(tensor(init)), "layers", 0, "init")


def test_initializer_that_needs_other_rank_is_rejected():
    assert_rejected_at(body(tensor("eye", [2, 3, 4])), "layers", 0, "init")
    assert_rejected_at(body(tensor({"name": "dirac"}, [4, 4])), "layers", 0, "init")
    assert_rejected_at(body(tensor({"name": "dirac", "groups": 3}, [4, 4, 3])), "groups")


# ------------------------------------------------------------------------- layers ----


def test_unknown_layer_type_is_rejected():
    msg = assert_rejected_at(body({"type": "transformer", "name": "x"}), "layers", 0)
    assert "transformer" in msg


def test_extra_key_is_rejected_at_the_key():
    assert_rejected_at(body(linear(in_feature=3)), "in_feature")
    assert_rejected_at(body(linear(), seeed=3), "seeed")


@pytest.mark.parametrize("value", [3.0, "3", -2, True])
def test_layer_size_must_be_a_non_negative_integer(value):
    # 0 is a size torch accepts (an empty tensor: tests/core/layers/test_zero_element.py).
    assert_rejected_at(body(linear(in_features=value)), "in_features")


def test_conv_groups_must_divide_channels():
    conv = {"type": "conv2d", "name": "c", "in_channels": 4, "out_channels": 6,
            "kernel_size": 3, "groups": 4}
    assert_rejected_at(body(conv), "groups")


def test_conv_kernel_size_count_must_match_dims():
    conv = {"type": "conv2d", "name": "c", "in_channels": 4, "out_channels": 6,
            "kernel_size": [3, 3, 3]}
    assert_rejected_at(body(conv), "kernel_size")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected(literal):
    text = json.dumps(body(tensor({"name": "normal", "std": 1.0}))).replace('"std": 1.0',
                                                                              f'"std": {literal}')
    assert_rejected_at(text, "std")
    assert_rejected_at(body(tensor({"name": "constant", "value": float(literal.lower())})),
                       "value")


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, True, "7"])
def test_seed_out_of_range_or_not_an_integer_is_rejected(seed):
    assert_rejected_at({**body(linear()), "seed": seed}, "seed")


def test_seed_range_ends_are_accepted():
    for seed in (0, 2**64 - 1):
        build_plan(Spec.model_validate({**body(linear()), "seed": seed}))


def test_bool_is_not_an_integer_anywhere():
    assert_rejected_at(body({"type": "repeat", "name": "r", "count": True,
                             "layers": [linear()]}), "count")
    assert_rejected_at(body(tensor({"name": "dirac", "groups": True}, [4, 4, 3])), "groups")
    assert_rejected_at(body(linear(), shard={"rank": True, "world_size": 2}), "rank")


def test_unknown_dtype_and_convention_are_rejected():
    assert_rejected_at({**body(linear()), "dtype": "float8"}, "dtype")
    assert_rejected_at({**body(linear()), "convention": "jax"}, "convention")


# -------------------------------------------------------------------- whole model ----


def test_duplicate_tensor_names_are_rejected_at_the_second_layer():
    msg = assert_rejected_at(body(linear(), linear()), "layers", 1, "name")
    assert "fc.weight" in msg


def test_duplicate_names_through_a_tensor_layer_are_rejected():
    clash = {"type": "tensor", "name": "fc.bias", "shape": [3], "init": "zeros"}
    assert_rejected_at(body(linear(), clash), "layers", 1, "name")


def test_select_of_an_unknown_name_is_rejected_at_its_index():
    msg = assert_rejected_at(body(linear(), select=["fc.weight", "fc.bais"]), "select", 1)
    assert "fc.bais" in msg


def test_shard_that_does_not_divide_is_rejected():
    assert_rejected_at(body(linear(), shard={"dim": 0, "rank": 0, "world_size": 2}),
                       "shard", "world_size")


def test_shard_dim_beyond_a_tensors_rank_replicates_that_tensor():
    # fc.bias has no dim 1: every rank gets it whole (as row-parallel biases are
    # replicated in tensor parallelism); fc.weight is split along dim 1.
    request = body(linear(in_features=4, out_features=4),
                   shard={"dim": 1, "rank": 1, "world_size": 2})
    shapes = {o.name: o.shape for o in build_plan(Spec.model_validate(request)).outputs}
    assert shapes == {"fc.weight": (4, 2), "fc.bias": (4,)}


def test_shard_rank_out_of_range_is_rejected():
    request = body(linear(out_features=4), shard={"dim": 0, "rank": 2, "world_size": 2})
    assert "rank" in assert_rejected_at(request, "shard", "rank")


def test_layers_and_keras_model_together_are_rejected():
    found = errors_of({**body(linear()), "keras_model": {"class_name": "Sequential"}})
    assert any("keras_model" in msg and "layers" in msg for _, msg in found)


def test_neither_layers_nor_keras_model_is_rejected():
    found = errors_of({"seed": 1})
    assert any("keras_model" in msg and "layers" in msg for _, msg in found)


def test_spec_sha256_ignores_select_and_shard_and_key_order():
    plain = Spec.model_validate(body(linear(out_features=4)))
    sliced = Spec.model_validate(body(linear(out_features=4), select=["fc.weight"],
                                      shard={"rank": 1, "world_size": 2}))
    original = body(linear(out_features=4))
    reversed_keys = {key: original[key] for key in reversed(original)}
    reversed_keys["layers"] = [{key: layer[key] for key in reversed(layer)}
                               for layer in original["layers"]]
    reordered = Spec.model_validate(reversed_keys)
    assert plain.spec_sha256() == sliced.spec_sha256() == reordered.spec_sha256()
    other_seed = Spec.model_validate({**body(linear(out_features=4)), "seed": 2})
    assert other_seed.spec_sha256() != plain.spec_sha256()


# -------------------------------------------------------------------- booleans ----

# A valid minimal object of every schema model with a numeric field: the test below sets
# each numeric field to a JSON boolean in turn. A new model with numbers must be added
# here (the coverage assertion says so), so no numeric field escapes the check.
_MINIMAL: dict[str, dict[str, Any]] = {
    "Constant": {"name": "constant"}, "Dirac": {"name": "dirac"}, "Eye": {"name": "eye"},
    "Identity": {"name": "identity"}, "KaimingNormal": {"name": "kaiming_normal"},
    "KaimingUniform": {"name": "kaiming_uniform"},
    "Normal": {"name": "normal", "std": 0.1}, "Orthogonal": {"name": "orthogonal"},
    "RandomNormal": {"name": "random_normal"}, "RandomUniform": {"name": "random_uniform"},
    "Sparse": {"name": "sparse", "sparsity": 0.1}, "Sinusoidal": {"name": "sinusoidal"},
    "TruncNormal": {"name": "trunc_normal"},
    "TruncatedNormal": {"name": "truncated_normal", "std": 0.1},
    "Uniform": {"name": "uniform", "low": -1, "high": 1},
    "VarianceScaling": {"name": "variance_scaling"},
    "XavierNormal": {"name": "xavier_normal"}, "XavierUniform": {"name": "xavier_uniform"},
    "BatchNorm": {"type": "batch_norm", "name": "m", "num_features": 4},
    "Conv": {"type": "conv2d", "name": "m", "in_channels": 2, "out_channels": 2,
             "kernel_size": 3},
    "Embedding": {"type": "embedding", "name": "m", "num_embeddings": 4, "embedding_dim": 2},
    "GRU": {"type": "gru", "name": "m", "input_size": 2, "hidden_size": 2},
    "LSTM": {"type": "lstm", "name": "m", "input_size": 2, "hidden_size": 2},
    "GroupNorm": {"type": "group_norm", "name": "m", "num_groups": 1, "num_channels": 2},
    "LayerNorm": {"type": "layer_norm", "name": "m", "normalized_shape": 2},
    "RMSNorm": {"type": "rms_norm", "name": "m", "normalized_shape": 2},
    "Linear": {"type": "linear", "name": "m", "in_features": 2, "out_features": 2},
    "MultiheadAttention": {"type": "multihead_attention", "name": "m", "embed_dim": 4,
                           "num_heads": 2},
    "Repeat": {"type": "repeat", "name": "m", "count": 1, "layers": []},
    "TensorLayer": {"type": "tensor", "name": "m", "shape": [2, 2], "init": "zeros"},
    "Shard": {"rank": 0, "world_size": 1},
}


def _numeric_fields() -> list[tuple[str, str]]:
    defs = Spec.model_json_schema()["$defs"]
    found = []
    for model, schema in defs.items():
        for field, prop in schema.get("properties", {}).items():
            types = {prop.get("type")} | {option.get("type") for option in prop.get("anyOf", [])}
            if types & {"number", "integer"}:
                found.append((model, field))
    return found


def _placed(model: str, value: dict[str, Any]) -> dict[str, Any]:
    """A request with ``value`` where a ``model`` object goes."""
    if model == "Shard":
        return body(linear(), shard=value)
    if "type" in value:
        return body(value)
    return body(tensor(value))


def test_every_numeric_field_is_covered_by_the_boolean_check():
    assert {model for model, _ in _numeric_fields()} <= set(_MINIMAL)


@pytest.mark.parametrize(("model", "field"), _numeric_fields())
@pytest.mark.parametrize("flag", [True, False])
def test_numeric_fields_refuse_booleans_naming_the_field(model, field, flag):
    """A JSON true is not the number 1 (torch refuses ``negative_slope=True`` too)."""
    assert Spec.model_validate(_placed(model, _MINIMAL[model]))  # the minimal body is valid
    found = errors_of(_placed(model, {**_MINIMAL[model], field: flag}))
    # Union members add their tags after the field (the service drops them).
    assert any(field in loc for loc, _ in found), found


def test_keras_config_refuses_booleans_too():
    init = {"class_name": "TruncatedNormal", "config": {"stddev": True}}
    assert_rejected_at(body(tensor(init)), "std")
