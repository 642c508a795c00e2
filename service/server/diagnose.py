"""``POST /v1/diagnose``: signal propagation, variance table, histograms.

The diagnostics materialise the whole model in memory (float64), unlike ``/v1/init``
which streams in bounded chunks, and push a batch of probes through it, so a diagnose
request is bounded before anything is generated (413, settings ``diagnose_*``): its
parameters and tensors, the probe's activation memory (``batch`` times the widest
layer's inputs plus every layer's outputs) and its work (``batch`` times the
parameters). It takes a stream slot while it runs, and looks at the whole model: a
spec's ``select`` and ``shard`` are ignored.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response
from weightinit.core import LimitError, Limits, Plan, Spec, SpecError, build_plan
from weightinit.core.diagnostics.network import NotSequential, links_from_plan
from weightinit.core.diagnostics.signal import ACTIVATIONS, DEFAULT_BATCH, diagnose
from weightinit.service.server import strict_json
from weightinit.service.server.auth import Principal
from weightinit.service.server.errors import invalid_request
from weightinit.service.server.media_type import require_json
from weightinit.service.server.models import ErrorResponse
from weightinit.service.server.representable import check_representable
from weightinit.service.server.settings import Settings

MAX_HISTOGRAMS = 64  # without ``tensor``: the first tensors in file order


class DiagnoseRequest(BaseModel):
    """A spec, the activation after each layer, and what to histogram."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    spec: Spec
    activations: str | dict[str, str] = Field(
        "relu",
        description=f"one of {', '.join(ACTIVATIONS)} for every layer, or a map from layer "
        "path to activation (layers not in the map: relu); softmax only after the last "
        "layer",
    )
    tensor: str | None = Field(None, description="histogram only this tensor")
    bins: Annotated[int, Field(ge=5, le=200)] = 50
    batch: Annotated[int, Field(ge=16, le=2048, description="Gaussian probe inputs")] = (
        DEFAULT_BATCH
    )
    probe_seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0


def _request_schema() -> dict[str, Any]:
    schema = DiagnoseRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # Spec and its parts are components already (service.openapi)
    return schema


@dataclasses.dataclass(frozen=True)
class DiagnoseLimits:
    """The planning limits with the diagnose caps, and the probe's bounds."""

    plan: Limits
    max_activation_elements: int
    max_work: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DiagnoseLimits:
        limits = settings.limits()
        return cls(
            dataclasses.replace(
                limits,
                max_tensors=min(limits.max_tensors, settings.diagnose_max_tensors),
                max_parameters=min(limits.max_parameters, settings.diagnose_max_parameters),
            ),
            settings.diagnose_max_activation_elements,
            settings.diagnose_max_work,
        )


def check_probe_cost(plan: Plan, batch: int, limits: DiagnoseLimits) -> None:
    """Refuse (413 at ``batch``) a probe whose activations or work exceed the limits."""
    work = batch * plan.total_parameters
    if work > limits.max_work:
        raise LimitError(("batch",), f"batch {batch} x {plan.total_parameters} parameters = "
                         f"{work} multiply-adds, over the limit {limits.max_work}: use a smaller "
                         "batch or model")
    try:
        links = links_from_plan(plan)
    except NotSequential:
        return  # no probe runs
    widest = max(link.in_channels * link.receptive for link in links)
    outputs = sum(link.out_channels for link in links)
    elements = batch * (widest + outputs)
    if elements > limits.max_activation_elements:
        raise LimitError(("batch",), f"batch {batch} x ({widest} inputs of the widest layer + "
                         f"{outputs} outputs of all layers) = {elements} activations, over the "
                         f"limit {limits.max_activation_elements}: use a smaller batch or "
                         "narrower layers")


def run_diagnose(raw: bytes, limits: DiagnoseLimits) -> dict[str, Any]:
    """Validate, plan (whole model), bound, generate and diagnose: the response document."""
    try:
        body = DiagnoseRequest.model_validate_json(raw)
    except ValidationError as error:
        raise invalid_request(error.errors(include_input=False, include_url=False), raw) from None
    spec = body.spec.model_copy(update={"select": None, "shard": None})
    try:
        plan = build_plan(spec, limits.plan)
        check_representable(plan)
    except SpecError as error:  # its loc is inside the spec, which sits under "spec" here
        raise type(error)(("spec", *error.loc), error.msg) from None
    check_probe_cost(plan, body.batch, limits)
    if body.tensor is not None:
        names = [body.tensor]
    else:
        names = [output.name for output in plan.outputs[:MAX_HISTOGRAMS]]
    document = diagnose(plan, body.activations, histogram_of=names, bins=body.bins,
                        batch=body.batch, probe_seed=body.probe_seed)
    document["histograms_truncated"] = body.tensor is None and len(plan.outputs) > len(names)
    return document


router = APIRouter()


@router.post(
    "/v1/diagnose",
    tags=["weights"],
    summary="Signal propagation through depth, expected vs observed variance, histograms",
    response_class=Response,
    dependencies=[Depends(require_json)],
    responses={
        200: {"description": "per-tensor variance table, `propagation` (forward and backward "
              "variance per layer, analytic and measured, and `flags`), `histograms`"},
        401: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
        415: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
        429: {"model": ErrorResponse}, 503: {"model": ErrorResponse},
    },
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": _request_schema()}}}},
)
async def post_diagnose(request: Request, principal: Principal) -> Response:
    raw = await request.body()
    limits = DiagnoseLimits.from_settings(request.app.state.services.settings)
    slot = request.app.state.services.capacity.acquire(principal)
    try:
        loop = asyncio.get_running_loop()
        document = await loop.run_in_executor(None, run_diagnose, raw, limits)
    finally:
        slot.release()
    return Response(strict_json.dumps(document), media_type="application/json")
