"""The ``huggingface`` spec source: a Hugging Face ``config.json`` object in the request.

Validated here without transformers: only the shape of the request. What the config
means (its family, its sizes, its tensors) is checked by ``core.hf.families`` and traced
by ``core.hf.tracing`` when the spec is planned.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

InitRecipe = Literal["family", "torch"]


class HuggingFaceSource(BaseModel):
    """A model described by its Hugging Face config, as ``from_config`` would build it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    config: dict[str, Any] = Field(
        description="the model's config.json object; its model_type names the family"
    )
    architecture: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="a model class of the family as transformers' auto classes name it "
        "(e.g. LlamaForCausalLM); default config.architectures[0], else the base model",
    )
    init_recipe: InitRecipe = Field(
        "family",
        description="'family': the distribution each tensor gets from the family's own "
        "_init_weights (what from_config does); 'torch': torch's constructor defaults",
    )
