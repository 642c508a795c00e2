"""Property: any JSON either becomes a spec and a plan, or is refused naming a field.

For any body (arbitrary JSON, or a valid spec with random mutations) the engine does one
of two things and nothing else: it validates into a ``Spec`` and plans it (the plan then
satisfies the file's invariants), or it raises pydantic's ``ValidationError`` or a
``SpecError`` (422) / ``LimitError`` (413) whose every ``loc`` is a path in the body.
Any other exception would be a 500 in the service.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError
from spec_strategies import BASE_SPECS, hostile_bodies, json_values, resolve_loc
from weightinit.core import (
    LimitError,
    Limits,
    Spec,
    SpecError,
    build_plan,
    header_bytes,
    plan_document,
)
from weightinit.core.dtypes import ITEMSIZE

# Small limits: planning is instant and never a memory concern under hypothesis.
LIMITS = Limits(max_tensors=2_000, max_parameters=5_000_000, max_depth=4)
# Errors about the body as a whole: not an object, or layers and keras_model together.
ROOT_ERRORS = {"model_type", "model_attributes_type", "value_error", "json_type"}


def check_validation_error(error: ValidationError, document: Any) -> None:
    for detail in error.errors():
        path = resolve_loc(detail["loc"], document)
        assert path is not None, (detail["loc"], detail["msg"])
        assert path or detail["type"] in ROOT_ERRORS, detail


def check_plan(spec: Spec) -> None:
    """The invariants of a planned file (what the header will promise)."""
    plan = build_plan(spec, LIMITS)
    names = [output.name for output in plan.outputs]
    assert len(names) == len(set(names)) <= LIMITS.max_tensors
    offset = 0
    for output in plan.outputs:
        assert output.offset == offset
        assert all(isinstance(size, int) and size >= 0 for size in output.shape)
        assert output.nbytes == math.prod(output.shape) * ITEMSIZE[output.plan.dtype]
        offset += output.nbytes
    assert plan.total_bytes == offset
    assert plan.total_parameters <= LIMITS.max_parameters
    header_bytes(plan)
    json.dumps(plan_document(plan), allow_nan=False)  # finite numbers only: valid JSON


def outcome(document: Any) -> str:
    """Validate and plan one body; which of the allowed outcomes it had."""
    raw = json.dumps(document)  # NaN and Infinity included, as a hostile client may send
    try:
        spec = Spec.model_validate_json(raw)
    except ValidationError as error:
        check_validation_error(error, document)
        return "invalid"
    try:
        check_plan(spec)
    except SpecError as error:
        assert error.status == (413 if isinstance(error, LimitError) else 422)
        assert resolve_loc(error.loc, document) == list(error.loc), error
        assert error.msg
        return "refused"
    return "planned"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=hostile_bodies)
def test_any_json_plans_or_raises_an_error_naming_a_field(document: Any) -> None:
    outcome(document)


@settings(max_examples=60, deadline=None)
@given(value=json_values)
def test_any_json_in_place_of_the_layers_names_a_field(value: Any) -> None:
    outcome({"seed": 1, "layers": value})


@pytest.mark.parametrize("index", range(len(BASE_SPECS)))
def test_the_unmutated_base_specs_plan(index: int) -> None:
    assert outcome(BASE_SPECS[index]) == "planned"


@pytest.mark.slow
@settings(max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=hostile_bodies)
def test_many_hostile_bodies_plan_or_raise_an_error_naming_a_field(document: Any) -> None:
    outcome(document)
