"""Response models, for ``/docs`` and ``/openapi.json``.

The routes return JSON built by ``weightinit.core.report`` directly (no second validation pass on
the hot path); these models describe that JSON for clients and generated SDKs. The
request model is ``core.Spec`` itself.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="path of the field in the JSON body; [] = body")
    msg: str


class ErrorInfo(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. invalid_request")
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"error": {
        "code": "invalid_request",
        "message": "layers.0.in_features: Input should be greater than or equal to 1",
        "details": [{"loc": ["layers", 0, "in_features"],
                     "msg": "Input should be greater than or equal to 1"}],
    }}]})

    error: ErrorInfo


class PlanTensor(BaseModel):
    """One tensor of the file, with its resolved initializer and expected statistics."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="state_dict key (torch) or Keras weight path")
    layer: str
    layer_type: str
    role: str
    shape: list[int] = Field(description="shape in the file (the region's, for a region)")
    dtype: str
    initializer: dict[str, Any] = Field(description="resolved: name and every parameter")
    fan_in: int | None = Field(description="null where the convention defines none (torch 1-D)")
    fan_out: int | None = Field(description="null where the convention defines none (torch 1-D)")
    expected_mean: float
    expected_variance: float
    full_shape: list[int] | None = Field(
        None, description="the whole tensor's shape, when the file holds only a region of it")
    offset: list[int] | None = Field(
        None, description="where the region starts in the whole tensor (with full_shape)")


class LayerGroup(BaseModel):
    layer: str
    type: str
    tensors: list[str]
    parameters: int


class HuggingFaceModel(BaseModel):
    """What a ``huggingface`` spec builds, beside its tensors."""

    model_type: str = Field(description="the family (the config's model_type)")
    architecture: str = Field(description="the model class traced, e.g. LlamaForCausalLM")
    generation_config: dict[str, Any] | None = Field(
        description="the generation_config.json object save_pretrained writes with the "
        "weights, from the server's transformers; null for a class that cannot generate")


class PlanDocument(BaseModel):
    """``POST /v1/plan``: what ``/v1/init`` would produce, nothing generated."""

    algorithm: str
    weightinit_version: str
    seed: int
    convention: str
    spec_sha256: str = Field(description="sha256 of the canonical spec without select/shard")
    select: list[str | dict[str, Any]] | None = Field(
        description="names, and regions {name, offset, shape}, as requested")
    shard: dict[str, int] | None
    tensors: list[PlanTensor] = Field(description="in file order")
    layers: list[LayerGroup]
    total_parameters: int
    total_bytes: int = Field(description="bytes of tensor data")
    file_bytes: int = Field(description="size of the safetensors file (Content-Length)")
    warnings: list[str]
    huggingface: HuggingFaceModel | None = Field(
        None, description="only for a huggingface spec: the model it builds")


class ReportTensor(PlanTensor):
    mean: float | None
    variance: float | None
    min: float | None
    max: float | None
    sha256: str = Field(description="sha256 of the tensor's bytes in the file")


class ReportDocument(PlanDocument):
    """``POST /v1/report`` and part 2 of a multipart ``/v1/init``: plan plus observations."""

    tensors: list[ReportTensor]  # type: ignore[assignment]
    file_sha256: str = Field(description="sha256 of the body /v1/init returns")


class InitializerEntry(BaseModel):
    name: str
    origin: str = Field(description="torch, keras or common: whose semantics the name has")
    formula: str
    parameters: dict[str, Any] = Field(description="JSON schema of each parameter")
    required: list[str]


class Status(BaseModel):
    status: str
