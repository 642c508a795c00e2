"""What the parity tests compare: a ``from_config`` model saved by ``save_pretrained`` and
weightinit's file for the same config, written into a from_pretrained-ready directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from safetensors.numpy import load_file
from weightinit.core import Plan, Spec, build_plan, write_file

# The seed of both sides (torch's global generator for from_config, the spec's for ours).
SEED = 20260105


@dataclass
class Sides:
    """One config, both ways: tensors by name, and weightinit's plan and directory."""

    variant: str
    config: dict[str, Any]
    plan: Plan
    ours: dict[str, np.ndarray]
    theirs: dict[str, np.ndarray]
    ours_dir: Path


def from_config_class(config: dict[str, Any]) -> Any:
    """The transformers class the config names (its architectures, else AutoModel)."""
    names = config.get("architectures")
    return getattr(transformers, names[0]) if names else transformers.AutoModel


def hf_config(config: dict[str, Any]) -> Any:
    body = {k: v for k, v in config.items() if k != "model_type"}
    return transformers.AutoConfig.for_model(config["model_type"], **body)


def build_sides(variant: str, config: dict[str, Any], root: Path) -> Sides:
    """Save ``from_config``'s model and write weightinit's directory under ``root``."""
    torch.manual_seed(SEED)
    model = from_config_class(config).from_config(hf_config(config)) if not config.get(
        "architectures") else from_config_class(config)._from_config(hf_config(config))
    theirs_dir = root / "from_config"
    model.save_pretrained(theirs_dir)
    theirs = load_file(theirs_dir / "model.safetensors")

    plan = build_plan(Spec.model_validate(
        {"seed": SEED, "dtype": "float32", "huggingface": {"config": config}}))
    ours_dir = root / "weightinit"
    ours_dir.mkdir()
    write_file(plan, ours_dir / "model.safetensors")
    (ours_dir / "config.json").write_text(json.dumps(config))
    ours = load_file(ours_dir / "model.safetensors")
    return Sides(variant, config, plan, ours, theirs, ours_dir)


def random_part(output_plan: object, values: np.ndarray) -> np.ndarray:
    """The elements the initializer draws (overridden ranges left out)."""
    flat = values.reshape(-1).astype(np.float64)
    keep = np.ones(flat.size, dtype=bool)
    for override in output_plan.overrides:  # type: ignore[attr-defined]
        keep[override.start : override.stop] = False
    return flat[keep]
