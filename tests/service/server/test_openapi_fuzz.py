"""Schemathesis against the service's own ``/openapi.json``, in process (ASGI).

Every operation gets generated requests, valid and invalid (schemathesis' positive and
negative modes); every response must be a non-5xx whose status, content type and body
are the ones the OpenAPI document declares for it. The app runs with small size limits
so that valid specs stay cheap to generate.

The default run draws 25 requests per operation after the schema's own examples; the
``slow`` one draws 500. Schemathesis' coverage phase (boundary values of every field, in
every combination) is off: for the spec schema it enumerates about 135 000 cases, built
when the test is collected (80 s on 2 cores, even for a deselected test) and tens of
minutes to send. Run it against a live server with the CLI (docs/reliability.md).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from weightinit.service.server.app import create_app
from weightinit.service.server.settings import Settings

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]
APP = create_app(Settings(max_parameters=200_000, max_tensors=500, max_body_bytes=256 << 10))
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)
QUIET = list(HealthCheck)  # big schemas make slow, filtered generation: expected here


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=QUIET,
          phases=[Phase.explicit, Phase.generate, Phase.shrink])
def test_generated_requests_get_declared_non_5xx_responses(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@schema.parametrize()
@settings(max_examples=500, deadline=None, suppress_health_check=QUIET,
          phases=[Phase.explicit, Phase.generate, Phase.shrink])
def test_many_generated_requests_get_declared_non_5xx_responses(
    case: schemathesis.Case,
) -> None:
    case.call_and_validate(checks=CHECKS)
