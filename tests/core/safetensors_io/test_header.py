"""The one safetensors header reader (``weightinit.core.safetensors_io.header``)."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
from engine_helpers import spec_of, tensor_layer
from safetensors.numpy import save_file
from weightinit.core.plan import build_plan
from weightinit.core.safetensors_io.header import MAX_HEADER_BYTES, HeaderError, read_header
from weightinit.core.safetensors_io.writer import header_bytes


def test_reads_back_what_the_writer_writes() -> None:
    plan = build_plan(spec_of([tensor_layer("w", [3, 4], "zeros"),
                               tensor_layer("b", [4], "ones")]))
    written = header_bytes(plan)
    layout = read_header(io.BytesIO(written + b"\0" * plan.total_bytes))
    assert layout.header == written
    assert set(layout.entries) == {"w", "b"}
    assert layout.data_bytes == plan.total_bytes
    assert layout.file_bytes == len(written) + plan.total_bytes
    assert layout.metadata == json.loads(written[8:])["__metadata__"]


def test_reads_a_file_written_by_the_official_library(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "x.safetensors"
    save_file({"a": np.zeros((2, 3), np.float32), "b": np.ones(5, np.float16)}, str(path),
              metadata={"format": "np"})
    with path.open("rb") as handle:
        layout = read_header(handle)
    assert [name for name, _ in layout.in_data_order()] == ["a", "b"]
    assert layout.metadata == {"format": "np"}
    assert layout.file_bytes == path.stat().st_size


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\1\0", "too short"),
        (struct.pack("<Q", MAX_HEADER_BYTES + 1), "over the"),
        (struct.pack("<Q", 10) + b"{}", "ended after 2 of 10"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 4) + b"{x}x", "unreadable"),
        (struct.pack("<Q", 19) + b'{"__metadata__": 1}', "__metadata__"),
    ],
)
def test_refuses_what_is_not_a_safetensors_header(data: bytes, message: str) -> None:
    with pytest.raises(HeaderError, match=message):
        read_header(io.BytesIO(data))
