"""The planner: validation before anything starts, and a cache bounded in tensors."""

from __future__ import annotations

import asyncio
import json

import pytest
from http_helpers import MLP, body
from weightinit.core import Limits
from weightinit.service.server import planning
from weightinit.service.server.errors import ApiError
from weightinit.service.server.planning import Planner


def test_the_same_body_is_planned_once() -> None:
    planner = Planner(Limits(), cache_entries=8)

    async def twice() -> tuple:
        return (await planner.prepare(body(MLP)), await planner.prepare(body(MLP)))

    first, second = asyncio.run(twice())
    assert first is second
    assert first.file_size == len(first.header) + first.plan.total_bytes


def test_the_cache_holds_a_bounded_number_of_tensors(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    monkeypatch.setattr(planning, "CACHE_TENSOR_BUDGET", 40)
    planner = Planner(Limits(), cache_entries=10_000)

    async def many() -> None:
        for seed in range(30):  # 30 plans of 4 tensors offered
            await planner.prepare(body({**MLP, "seed": seed}))

    asyncio.run(many())
    assert 0 < planner._cached_tensors <= 40
    assert sum(len(p.plan.outputs) for p in planner._cache.values()) == planner._cached_tensors


def test_invalid_bodies_raise_the_422_with_the_body_path() -> None:
    planner = Planner(Limits(), cache_entries=8)
    spec = json.loads(body(MLP))
    spec["layers"][0]["weight_init"] = {"name": "uniform", "low": "a", "high": 1.0}
    with pytest.raises(ApiError) as raised:
        asyncio.run(planner.prepare(json.dumps(spec).encode()))
    assert raised.value.status == 422
    assert raised.value.details[0]["loc"] == ["layers", 0, "weight_init", "low"]


def test_plan_documents_are_cached_as_bytes_even_for_plans_too_big_to_keep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(planning, "MAX_CACHED_TENSORS", 2)  # the MLP's 4 tensors: too big
    planner = Planner(Limits(), cache_entries=8)

    async def twice() -> tuple[bytes, bytes]:
        return await planner.plan_json(body(MLP)), await planner.plan_json(body(MLP))

    first, second = asyncio.run(twice())
    assert first is second and json.loads(first)["total_parameters"] > 0
    assert planner._cached_tensors == 0
