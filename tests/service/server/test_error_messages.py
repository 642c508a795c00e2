"""Errors about names say what is wrong in plain words, suggest the closest valid name and
list the valid ones (no pydantic union-tag jargon), as the API and the CLI show them."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest
from pydantic import ValidationError
from weightinit.core import REGISTRY, Spec
from weightinit.core.layers import LAYER_TYPES
from weightinit.service.json_lines import line_of
from weightinit.service.server.error_paths import validation_details


def details_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = json.dumps(body)
    with pytest.raises(ValidationError) as caught:
        Spec.model_validate_json(raw)
    return validation_details(caught.value.errors(include_input=False), raw.encode())


def one_layer(layer: dict[str, Any]) -> dict[str, Any]:
    return {"seed": 1, "layers": [layer]}


def test_unknown_initializer_suggests_the_closest_and_lists_all():
    tensor = {"type": "tensor", "name": "t", "shape": [2, 2], "init": "kaiming_unifrom"}
    (detail,) = details_of(one_layer(tensor))
    assert detail["loc"] == ["layers", 0, "init"]
    assert "unknown initializer 'kaiming_unifrom' (did you mean 'kaiming_uniform'?)" in (
        detail["msg"])
    assert all(name in detail["msg"] for name in REGISTRY)
    assert "tag" not in detail["msg"]


def test_unknown_initializer_in_an_object_too():
    tensor = {"type": "tensor", "name": "t", "shape": [2], "init": {"name": "trunc_norml"}}
    (detail,) = details_of(one_layer(tensor))
    assert "(did you mean 'trunc_normal'?)" in detail["msg"]


def test_unknown_layer_type_suggests_and_lists_every_type():
    (detail,) = details_of(one_layer({"type": "lnear", "name": "a"}))
    assert detail["loc"] == ["layers", 0, "type"]
    assert "unknown layer type 'lnear' (did you mean 'linear'?)" in detail["msg"]
    for model in LAYER_TYPES:
        for layer_type in get_args(model.model_fields["type"].annotation):
            assert layer_type in detail["msg"]


def test_a_name_far_from_every_choice_gets_the_list_without_a_guess():
    (detail,) = details_of(one_layer({"type": "transformer_block", "name": "a"}))
    assert "did you mean" not in detail["msg"]
    assert "the layer types are: linear, " in detail["msg"]


def test_missing_layer_type_says_which_key_is_needed():
    (detail,) = details_of(one_layer({"name": "a"}))
    assert detail["msg"].startswith('a layer needs a "type": one of linear, ')


@pytest.mark.parametrize(("body", "loc", "expected"), [
    (one_layer({"type": "linear", "name": "a", "in_features": 1, "out_features": 2,
                "out_feature": 2}),
     ["layers", 0, "out_feature"], "(did you mean 'out_features'?); the fields of a linear "
                                   "layer are: name, dtype, in_features, out_features"),
    (one_layer({"type": "tensor", "name": "a", "shape": [2],
                "init": {"name": "normal", "std": 1, "stdd": 1}}),
     ["layers", 0, "init", "stdd"], "(did you mean 'std'?); the fields of the normal "
                                    "initializer are: name, mean, std"),
    ({"seed": 1, "layers": [], "seeed": 2}, ["seeed"],
     "(did you mean 'seed'?); the fields of the spec are: seed, convention"),
    ({"seed": 1, "layers": [], "shard": {"rank": 0, "world_size": 1, "rnk": 0}},
     ["shard", "rnk"], "(did you mean 'rank'?); the fields of shard are: dim, rank"),
])
def test_unknown_field_suggests_the_field_and_lists_the_fields(body, loc, expected):
    found = {tuple(detail["loc"]): detail["msg"] for detail in details_of(body)}
    assert expected in found[tuple(loc)], found


def test_line_of_finds_keys_items_and_the_deepest_existing_part():
    text = '{\n  "seed": 1,\n  "layers": [\n    {"type": "linear",\n     "name": "a"}\n  ]\n}'
    assert line_of(text, ["seed"]) == 2
    assert line_of(text, ["layers", 0]) == 4
    assert line_of(text, ["layers", 0, "name"]) == 5
    assert line_of(text, ["layers", 0, "missing"]) == 4  # the object that lacks it
    assert line_of(text, ["layers", 3]) == 3
    assert line_of(text, []) == 1
    assert line_of("not json", ["seed"]) == 1
