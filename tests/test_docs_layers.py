"""``docs/layers.md`` is generated from the schema; it must match what the code says now."""

from __future__ import annotations

from pathlib import Path

from weightinit.core.initializers import REGISTRY
from weightinit.service.layer_reference import layers_markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "layers.md"


def test_docs_layers_is_fresh():
    assert DOC.read_text() == layers_markdown(), (
        "docs/layers.md is stale: python -m weightinit.service.layer_reference > docs/layers.md")


def test_docs_layers_names_every_layer_type_and_initializer():
    text = DOC.read_text()
    for layer_type in ("linear", "conv2d", "embedding", "layer_norm", "rms_norm", "batch_norm",
                       "group_norm", "lstm", "gru", "multihead_attention", "tensor", "repeat"):
        assert f"`{layer_type}`" in text
    for name in REGISTRY:
        assert f"| `{name}` |" in text
