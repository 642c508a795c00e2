"""Property, through the app: any JSON body gets a 200 or a 4xx in the one error format
whose ``details[].loc`` are paths in the body, never a 5xx.

The bodies are those of ``tests/core/spec_strategies.py`` (arbitrary JSON and mutated
valid specs); the app has small size limits so that accepted specs stay cheap.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from http_helpers import client, error_of
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "core"))
from spec_strategies import hostile_bodies, resolve_loc

APP = client(max_parameters=200_000, max_tensors=2_000, max_depth=4)


def check_answer(path: str, document: Any) -> int:
    response = APP.post(path, content=json.dumps(document).encode())
    assert response.status_code in (200, 413, 422), (response.status_code, response.text)
    if response.status_code == 200:
        if path == "/v1/init":
            assert len(response.content) == int(response.headers["content-length"])
        return 200
    error = error_of(response)
    assert error["details"], error
    for detail in error["details"]:
        # The service drops union tags, so the loc must be a path of the body as sent.
        assert resolve_loc(detail["loc"], document) == detail["loc"], detail
    return response.status_code


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=hostile_bodies)
def test_any_json_to_plan_gets_200_or_a_4xx_naming_a_field(document: Any) -> None:
    check_answer("/v1/plan", document)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=hostile_bodies)
def test_any_json_to_init_gets_a_whole_file_or_a_4xx_naming_a_field(document: Any) -> None:
    check_answer("/v1/init", document)


@pytest.mark.slow
@settings(max_examples=2_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=hostile_bodies)
def test_many_hostile_bodies_get_200_or_a_4xx_naming_a_field(document: Any) -> None:
    check_answer("/v1/plan", document)
