"""Helpers for the in-process HTTP tests: apps with their own settings, and specs.
(Prometheus samples are read with ``live_server.metric``.)"""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi.testclient import TestClient
from weightinit.service.server.app import create_app
from weightinit.service.server.settings import Settings

MLP: dict[str, Any] = {
    "seed": 1234,
    "convention": "torch",
    "dtype": "float32",
    "layers": [
        {"type": "linear", "name": "fc1", "in_features": 64, "out_features": 32,
         "weight_init": {"name": "kaiming_uniform", "nonlinearity": "relu"}},
        {"type": "linear", "name": "fc2", "in_features": 32, "out_features": 8,
         "weight_init": "glorot_uniform", "bias_init": "zeros"},
    ],
}


def mlp(**changes: Any) -> dict[str, Any]:
    """A copy of the small MLP spec with top-level fields changed."""
    spec = copy.deepcopy(MLP)
    spec.update(changes)
    return spec


def body(spec: dict[str, Any]) -> bytes:
    return json.dumps(spec).encode()


def client(**settings: Any) -> TestClient:
    """A TestClient on a fresh app (its own metrics, capacity and cache), sending
    ``Content-Type: application/json`` unless a request says otherwise."""
    return TestClient(create_app(Settings(**settings)),
                      headers={"content-type": "application/json"})


def error_of(response: Any) -> dict[str, Any]:
    """The ``error`` object of an error response, checking the common format."""
    document = response.json()
    assert set(document) == {"error"}
    error = document["error"]
    assert set(error) == {"code", "message", "details"}
    assert all(set(d) == {"loc", "msg"} for d in error["details"])
    return error
