"""``weightinit.hf.from_config``: for every supported family, the model class of the
spec, nothing left on meta, ties kept, and exactly the weights of the spec's file (the
forward pass equals that of a CPU-built model loaded from ``write_file``'s file); the
server's route gives the same tensors as the local one; configs are refused by field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hf_tiny_models import CASES, build, outputs
from live_server import RunningServer
from safetensors.torch import load_file
from weightinit.core import Spec, build_plan, write_file
from weightinit.core.errors import SpecError
from weightinit.core.hf import SUPPORTED_FAMILIES
from weightinit.service.client.client import WeightinitError
from weightinit.service.pretrained import config_dict

import weightinit.hf
from weightinit.torch import load_weights, tied_names

FAMILY_CASES = sorted(case for case in CASES if case != "convnext")  # not a family


def spec_file(config: Any, architecture: str, dtype: str, tmp_path: Path) -> dict[str, Any]:
    spec = weightinit.hf.pretrained_spec(config_dict(config), seed=7, dtype=dtype,
                                         architecture=architecture)
    path = tmp_path / "weights.safetensors"
    write_file(build_plan(Spec.model_validate(spec)), path)
    return load_file(str(path))


def test_every_case_is_a_supported_family() -> None:
    assert {CASES[case][0]().model_type for case in FAMILY_CASES} == set(SUPPORTED_FAMILIES)


@pytest.mark.parametrize("case", FAMILY_CASES)
def test_the_model_holds_the_specs_weights_and_runs_as_a_cpu_built_one(
        case: str, tmp_path: Path) -> None:
    config, architecture, _ = CASES[case]
    model = weightinit.hf.from_config(config(), seed=7, dtype="float32",
                                      architecture=architecture).eval()
    assert type(model).__name__ == architecture
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert all(p.dtype == torch.float32 for p in model.parameters())

    reference = build(case)
    load_weights(reference, spec_file(config(), architecture, "float32", tmp_path))
    ties = tied_names(reference)
    assert tied_names(model) == ties
    for alias, first in ties.items():
        assert model.get_parameter(alias) is model.get_parameter(first), alias
    theirs = reference.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, theirs[name]), name
    for ours, expected in zip(outputs(model, case), outputs(reference, case), strict=True):
        assert torch.isfinite(ours).all()
        assert torch.equal(ours, expected)


def test_the_servers_route_gives_the_local_routes_tensors(server: RunningServer,
                                                          tmp_path: Path) -> None:
    """bfloat16 through the server (received as torch tensors, no numpy) equals the
    local generation, and a config given as a path, a dict or an object is one spec."""
    config = CASES["llama"][0]()
    path = tmp_path / "config.json"
    path.write_text(config.to_json_string())
    remote = weightinit.hf.from_config(path, seed=3, server=server.url)
    local = weightinit.hf.from_config(config, seed=3)
    given_dict = weightinit.hf.from_config(json.loads(path.read_text()), seed=3)
    assert next(remote.parameters()).dtype == torch.bfloat16
    theirs, third = local.state_dict(), given_dict.state_dict()
    for name, tensor in remote.state_dict().items():
        assert torch.equal(tensor, theirs[name]) and torch.equal(tensor, third[name]), name


@pytest.mark.parametrize("config, loc", [
    ({"model_type": "opt", "hidden_size": 16}, "model_type"),
    ({**CASES["llama"][0]().to_dict(), "auto_map": {"AutoModel": "x.Y"}}, "auto_map"),
])
def test_a_refused_config_names_the_field_locally_and_over_http(
        config: dict[str, Any], loc: str, server: RunningServer) -> None:
    config = json.loads(json.dumps(config, default=str))
    with pytest.raises(SpecError) as local:
        weightinit.hf.from_config(config, seed=1)
    assert loc in str(local.value) or loc in str(getattr(local.value, "loc", ""))
    with pytest.raises((WeightinitError, SpecError)) as remote:
        weightinit.hf.from_config(config, seed=1, server=server.url)
    assert loc in str(remote.value) or loc in json.dumps(getattr(remote.value, "details", ""))


def test_an_architecture_of_another_family_is_refused(server: RunningServer) -> None:
    with pytest.raises((WeightinitError, SpecError), match="BertModel"):
        weightinit.hf.from_config(CASES["llama"][0](), seed=1, architecture="BertModel",
                                  server=server.url)
