"""The request: a model's layers (or a Keras model, or a Hugging Face config) plus seed,
convention and dtype.

Pydantic models with ``extra="forbid"`` and no NaN/Infinity, so a misspelt key or a
non-finite number is an error that names its field, not a silent default.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictInt,
    model_serializer,
    model_validator,
)
from weightinit.core.conventions import ConventionName
from weightinit.core.dtypes import DType
from weightinit.core.hf.source import HuggingFaceSource
from weightinit.core.layers import Layer
from weightinit.core.rng.streams import MAX_SEED

# A tensor has at most this many dims (conv3d's weight has 5): longer lists are refused
# before they are compared with any tensor.
MAX_REGION_RANK = 32


class Region(BaseModel):
    """One ``select`` item: a tensor by full name, whole, or the hyper-rectangle
    ``full[offset : offset + shape]`` of it (DTensor's global offset and local shape).

    A plain string is the whole tensor; so is an object without ``offset``/``shape``, which
    serialises back to the plain string, so whole-tensor selections keep their bytes.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            "lm_head.weight",
            {"name": "embed.weight", "offset": [8001, 0], "shape": [8001, 2048]},
        ]},
    )

    name: Annotated[str, Field(min_length=1, max_length=4096)]
    offset: Annotated[list[Annotated[StrictInt, Field(ge=0)]],
                      Field(max_length=MAX_REGION_RANK)] | None = Field(
        None, description="first index of the region along each dim of the full tensor")
    shape: Annotated[list[Annotated[StrictInt, Field(ge=1)]],
                     Field(max_length=MAX_REGION_RANK)] | None = Field(
        None, description="size of the region along each dim (no empty regions)")

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _offset_with_shape(self) -> Region:
        if (self.offset is None) != (self.shape is None):
            raise ValueError("a region needs both offset and shape (neither: the whole tensor)")
        return self

    @property
    def is_region(self) -> bool:
        """True for an explicit region (even one covering the whole tensor)."""
        return self.offset is not None

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # Validation takes a plain name too (``_name_alone``): say so in the schema.
        schema = handler.resolve_ref_schema(handler(core_schema))
        name = {"type": "string", "minLength": 1, "maxLength": 4096,
                "description": "a tensor's full name: the whole tensor"}
        return {"anyOf": [name, dict(schema)], "title": "Region"}

    @model_serializer(mode="wrap")
    def _plain_name(self, handler: SerializerFunctionWrapHandler) -> Any:
        if self.offset is None:
            return self.name
        return handler(self)


class Shard(BaseModel):
    """Split every selected tensor into ``world_size`` equal parts along ``dim``: the
    regions ``offset[dim] = rank * size // world_size``, ``shape[dim] = size // world_size``."""

    model_config = ConfigDict(extra="forbid")

    dim: Annotated[StrictInt, Field(ge=0)] = 0
    rank: Annotated[StrictInt, Field(ge=0)]
    world_size: Annotated[StrictInt, Field(ge=1)]
    # ``rank < world_size`` is checked by ``build_plan`` so the error's loc is shard.rank.


class Spec(BaseModel):
    """A model to initialize: what ``POST /v1/init`` and ``weightinit init`` take."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "seed": 1234,
                    "convention": "torch",
                    "dtype": "float32",
                    "layers": [
                        {"type": "linear", "name": "fc1", "in_features": 784,
                         "out_features": 256,
                         "weight_init": {"name": "kaiming_uniform", "nonlinearity": "relu"}},
                        {"type": "linear", "name": "fc2", "in_features": 256,
                         "out_features": 10, "weight_init": "glorot_uniform",
                         "bias_init": "zeros"},
                    ],
                }
            ]
        },
    )

    seed: Annotated[StrictInt, Field(ge=0, le=MAX_SEED, description="0 .. 2**64-1")]
    convention: ConventionName = "torch"
    dtype: DType = "float32"
    algorithm: Literal["v1"] = Field("v1", description="bytes of a released version never change")
    # fail_fast: a hostile list of 100 000 bad items is one error, not 100 000.
    layers: Annotated[list[Layer], Field(fail_fast=True)] | None = None
    keras_model: dict[str, Any] | None = Field(
        None, description="a Keras model's to_json() object, instead of layers"
    )
    huggingface: HuggingFaceSource | None = Field(
        None, description="a Hugging Face config, instead of layers: the tensors "
        "save_pretrained writes, each initialized as the model's family does"
    )
    # Names are at most Limits.max_name_bytes (1024) long; longer ones cannot match.
    select: list[Region] | None = Field(
        None, fail_fast=True,
        description="only these tensors: full names, or regions "
                    "{name, offset, shape} of them (mixed freely)",
    )
    shard: Shard | None = None

    @model_validator(mode="before")
    @classmethod
    def _keras_model_means_keras(cls, data: Any) -> Any:
        # A Keras model only makes sense with Keras names and layouts: default to them.
        if isinstance(data, dict) and "keras_model" in data and "convention" not in data:
            return {**data, "convention": "keras"}
        return data

    @model_validator(mode="after")
    def _one_model(self) -> Spec:
        given = [self.layers, self.keras_model, self.huggingface]
        if sum(source is not None for source in given) != 1:
            raise ValueError("give exactly one of layers, keras_model and huggingface")
        return self

    def selection(self) -> list[Any] | None:
        """``select`` as JSON: plain names as strings, regions as objects."""
        if self.select is None:
            return None
        return [item.model_dump(mode="json") for item in self.select]

    def model_part(self) -> dict[str, Any]:
        """The spec without ``select``/``shard``: what determines the full model."""
        return self.model_dump(mode="json", exclude={"select", "shard"}, exclude_none=True)

    def spec_sha256(self) -> str:
        """sha256 of the canonical JSON of the model part (sorted keys, no spaces)."""
        return hashlib.sha256(canonical_json(self.model_part())).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, compact separators, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
