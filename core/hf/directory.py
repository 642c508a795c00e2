"""The files of a ``save_pretrained`` directory: shard layout, index and config.

Pure functions of the plan's tensor list, so the local writer and the one that fetches
shards from a server lay a model out the same way. The layout is huggingface_hub's
``split_state_dict_into_shards_factory`` (what ``save_pretrained`` uses): tensors in
order; one larger than the limit gets a shard of its own; otherwise a shard is closed when
the next tensor would take it over the limit. One shard is ``model.safetensors``;
several are ``model-0000i-of-0000N.safetensors`` with ``model.safetensors.index.json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_SHARD_SIZE = "5GB"
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
GENERATION_CONFIG_FILE = "generation_config.json"
SHARD_PATTERN = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")
# huggingface_hub's parse_size_to_int units (decimal), plus the binary ones.
_UNITS = {"TB": 10**12, "GB": 10**9, "MB": 10**6, "KB": 10**3,
          "TIB": 2**40, "GIB": 2**30, "MIB": 2**20, "KIB": 2**10, "B": 1}


@dataclass(frozen=True)
class TensorSize:
    """A tensor of the model: its name, its element count and its bytes."""

    name: str
    numel: int
    nbytes: int


@dataclass(frozen=True)
class ShardFile:
    """One weights file of the directory and the tensors it holds, in order."""

    filename: str
    names: tuple[str, ...]
    nbytes: int


def parse_size(size: int | str) -> int:
    """Bytes of a size given as an integer or as ``"5GB"``, ``"500MB"``, ``"2GiB"``."""
    if isinstance(size, int) and not isinstance(size, bool):
        value = size
    elif isinstance(size, str):
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", size)
        unit = (match.group(2) if match else "").upper() or "B"
        if match is None or unit not in _UNITS:
            raise ValueError(f"not a size: {size!r} (e.g. 5GB, 500MB, 2GiB or bytes)")
        value = int(float(match.group(1)) * _UNITS[unit])
    else:
        raise ValueError(f"not a size: {size!r}")
    if value <= 0:
        raise ValueError(f"the maximum shard size must be positive, got {size!r}")
    return value


def shard_layout(tensors: list[TensorSize], max_shard_size: int | str) -> list[ShardFile]:
    """The files the tensors go to, as ``save_pretrained`` splits them."""
    limit = parse_size(max_shard_size)
    groups: list[list[TensorSize]] = []
    current: list[TensorSize] = []
    current_bytes = 0
    for tensor in tensors:
        if tensor.nbytes > limit:
            groups.append([tensor])
            continue
        if current and current_bytes + tensor.nbytes > limit:
            groups.append(current)
            current, current_bytes = [], 0
        current.append(tensor)
        current_bytes += tensor.nbytes
    if current:
        groups.append(current)
    if len(groups) <= 1:
        names = tuple(t.name for group in groups for t in group)
        return [ShardFile(SINGLE_FILE, names, sum(t.nbytes for t in tensors))]
    count = len(groups)
    return [
        ShardFile(f"model-{index + 1:05d}-of-{count:05d}.safetensors",
                  tuple(t.name for t in group), sum(t.nbytes for t in group))
        for index, group in enumerate(groups)
    ]


def index_document(tensors: list[TensorSize], shards: list[ShardFile]) -> dict[str, Any]:
    """``model.safetensors.index.json`` as transformers writes it."""
    return {
        "metadata": {"total_parameters": sum(t.numel for t in tensors),
                     "total_size": sum(t.nbytes for t in tensors)},
        "weight_map": {name: shard.filename for shard in shards for name in shard.names},
    }


def directory_config(config: dict[str, Any], architecture: str | None, dtype: str
                     ) -> dict[str, Any]:
    """The ``config.json`` to write beside the weights: the request's config, with the
    architecture that was built (when known) and the dtype of the files, as
    ``save_pretrained`` records them."""
    out = {k: v for k, v in config.items() if k != "torch_dtype"}
    if architecture is not None:
        out["architectures"] = [architecture]
    out["dtype"] = dtype
    return out
