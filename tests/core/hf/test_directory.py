"""core.hf.directory: the shard layout is huggingface_hub's, size parsing, config.json."""

from __future__ import annotations

import pytest
from huggingface_hub.serialization import split_state_dict_into_shards_factory
from hypothesis import given
from hypothesis import strategies as st
from weightinit.core.hf.directory import (
    TensorSize,
    directory_config,
    index_document,
    parse_size,
    shard_layout,
)


@given(st.lists(st.integers(1, 400), min_size=1, max_size=30), st.integers(1, 1000))
def test_layout_is_huggingface_hub_s(sizes: list[int], limit: int) -> None:
    """The same files, the same tensors in each, as the function save_pretrained uses."""
    tensors = [TensorSize(f"t{i}", size, 4 * size) for i, size in enumerate(sizes)]
    state = {t.name: t for t in tensors}
    split = split_state_dict_into_shards_factory(
        state, get_storage_size=lambda t: t.nbytes, get_storage_id=lambda t: None,
        filename_pattern="model{suffix}.safetensors", max_shard_size=limit)
    ours = shard_layout(tensors, limit)
    assert {s.filename: list(s.names) for s in ours} == split.filename_to_tensors
    index = index_document(tensors, ours)
    if split.is_sharded:
        assert index["weight_map"] == split.tensor_to_filename
    assert index["metadata"]["total_size"] == split.metadata["total_size"]


@pytest.mark.parametrize(("text", "expected"), [
    ("5GB", 5 * 10**9), ("500MB", 5 * 10**8), ("2GiB", 2 * 2**30), ("1.5KB", 1500),
    (" 7 mb ", 7 * 10**6), ("123", 123), (4096, 4096)])
def test_sizes(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "5XB", "GB", "-1GB", 0, "0", True, 1.5])
def test_bad_sizes(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)  # type: ignore[arg-type]


def test_config_records_architecture_and_dtype() -> None:
    config = {"model_type": "llama", "torch_dtype": "float32", "hidden_size": 8}
    assert directory_config(config, "LlamaForCausalLM", "bfloat16") == {
        "model_type": "llama", "hidden_size": 8, "architectures": ["LlamaForCausalLM"],
        "dtype": "bfloat16"}
    assert "architectures" not in directory_config(config, None, "float32")
