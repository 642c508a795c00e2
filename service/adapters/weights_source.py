"""What the framework adapters share: the kinds of weight source ``load_weights`` takes,
and the result it returns.

A source is a safetensors file (a path), a mapping of name to array (numpy arrays,
bfloat16 from ``ml_dtypes`` included, or torch tensors), or what ``Client.init``
returned: its dict of arrays, or, when it wrote a file, its ``DownloadedFile`` (a
path-like; the former ``{"path", "bytes", "file_sha256"}`` dict is still taken).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

WeightsSource = Mapping[str, Any] | str | os.PathLike[str]

_FILE_RECORD_KEYS = frozenset({"path", "bytes", "file_sha256"})


class LoadResult(NamedTuple):
    """What ``load_weights`` did not match, as torch's ``load_state_dict`` reports it:
    ``missing_keys`` (weights of the model no tensor was given for) and
    ``unexpected_keys`` (tensors the model has no weight for)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def source_path(source: WeightsSource) -> str | None:
    """The safetensors file a source names (a path, or a client's file record), else
    None (the source is a mapping of arrays)."""
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    if isinstance(source, Mapping) and set(source) == _FILE_RECORD_KEYS and isinstance(
        source["path"], str
    ):
        return source["path"]
    if not isinstance(source, Mapping):
        raise TypeError(
            "weights are a safetensors path, a mapping of name -> array, or what "
            f"Client.init returned; got {type(source).__name__}"
        )
    return None


def incompatible_message(result: LoadResult, limit: int = 10) -> str:
    """A strict load's error text, naming at most ``limit`` keys of each kind."""

    def listed(keys: list[str]) -> str:
        more = f" (and {len(keys) - limit} more)" if len(keys) > limit else ""
        return ", ".join(keys[:limit]) + more

    parts = []
    if result.missing_keys:
        parts.append(f"missing keys (weights without a tensor): {listed(result.missing_keys)}")
    if result.unexpected_keys:
        parts.append("unexpected keys (tensors without a weight): "
                     f"{listed(result.unexpected_keys)}")
    return "; ".join(parts)
